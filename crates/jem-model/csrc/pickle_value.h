// The values of jem's pickle machine (pickle_machine.cpp) and its entry point, shared with
// the flattening and C API of jem_pickle.cpp. See jem_pickle.cpp for what is read and why.
#pragma once

#include <ATen/core/Tensor.h>
#include <caffe2/serialize/inline_container.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace jem_pickle {

struct Value;
using Ptr = std::shared_ptr<Value>;

// One Python value of the pickle machine. Containers are shared (the memo refers to them).
struct Value {
  enum Kind { None, Bool, Int, Float, Str, Bytes, Tuple, List, Dict, Tensor, Global, Object };
  Kind kind = None;
  bool b = false;
  int64_t i = 0;
  double f = 0.0;
  std::string s;                             // Str, Bytes; Global: "module.name"
  std::vector<Ptr> items;                    // Tuple, List
  std::vector<std::pair<Ptr, Ptr>> entries;  // Dict, in insertion order
  at::Tensor tensor;                         // Tensor (a storage is a 1-D tensor too)
  Ptr state;                                 // Object: the state BUILD gave it, if any
};

inline Ptr make(Value::Kind kind) {
  auto v = std::make_shared<Value>();
  v->kind = kind;
  return v;
}

inline Ptr make_str(Value::Kind kind, std::string s) {
  auto v = make(kind);
  v->s = std::move(s);
  return v;
}

inline Ptr make_int(int64_t i) {
  auto v = make(Value::Int);
  v->i = i;
  return v;
}

inline Ptr make_tensor(at::Tensor t) {
  auto v = make(Value::Tensor);
  v->tensor = std::move(t);
  return v;
}

inline const char *kind_name(Value::Kind k) {
  switch (k) {
    case Value::None: return "None";
    case Value::Bool: return "bool";
    case Value::Int: return "int";
    case Value::Float: return "float";
    case Value::Str: return "str";
    case Value::Bytes: return "bytes";
    case Value::Tuple: return "tuple";
    case Value::List: return "list";
    case Value::Dict: return "dict";
    case Value::Tensor: return "tensor";
    case Value::Global: return "global";
    case Value::Object: return "object";
  }
  return "?";
}

[[noreturn]] inline void fail(const std::string &what) { throw std::runtime_error(what); }

// Runs the pickle `data.pkl` of the archive `reader` (protocols 2 to 5, the opcodes and
// globals `torch.save` writes) and returns the unpickled object; storages are read from
// `reader`, on the CPU. Throws std::runtime_error naming the byte and opcode that failed.
Ptr unpickle(const std::string &pickle, caffe2::serialize::PyTorchStreamReader &reader);

}  // namespace jem_pickle
