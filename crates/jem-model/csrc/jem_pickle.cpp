// Reading files written by PyTorch's `torch.save` (the zip format of torch >= 1.6), for
// jem-model's `torch_pickle` module.
//
// libtorch's own unpickler (`torch::pickle_load`) is TorchScript's: it turns every
// `collections.OrderedDict` into None and cannot apply the BUILD that restores a state dict's
// `_metadata`, so it cannot read `torch.save(model.state_dict())`. This file instead runs a
// small pickle machine for the opcodes and globals `torch.save` emits (protocols 2 to 5) and
// reads the tensor storages through libtorch's zip reader (`PyTorchStreamReader`). It executes
// nothing: a whitelist of globals (OrderedDict, the tensor and parameter rebuild functions,
// `copyreg._reconstructor`) is interpreted, any other global becomes an opaque object, like
// `torch.load(weights_only=True)` minus the errors. Every storage is created on the CPU
// whatever device it was saved from (as `map_location="cpu"`).
//
// `jem_pickle_load` flattens the unpickled object: dictionaries (string, integer or boolean
// keys), lists, tuples and the attributes of reconstructed objects (an `argparse.Namespace`)
// are descended into, keys joined with dots (`model_state_dict.f.conv1.weight`); every tensor
// becomes a named entry and every other leaf a named description. The result is an opaque
// list read through the accessors below and freed with `jem_pickle_free`. Errors are
// malloc'ed messages (NULL on success), freed with `jem_pickle_free_error`.

#include "pickle_value.h"


#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/core/ScalarType.h>
#include <c10/core/Storage.h>
#include <c10/util/Exception.h>
#include <caffe2/serialize/inline_container.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>


namespace {

using namespace jem_pickle;

char *copy_message(const std::string &what) {
  char *out = static_cast<char *>(std::malloc(what.size() + 1));
  if (out != nullptr) {
    std::memcpy(out, what.c_str(), what.size() + 1);
  }
  return out;
}

struct Entries {
  std::vector<std::string> names;
  std::vector<at::Tensor> tensors;
  std::vector<std::string> other_names;
  std::vector<std::string> other_kinds;
};

std::string join(const std::string &prefix, const std::string &key) {
  return prefix.empty() ? key : prefix + "." + key;
}

std::string key_text(const Ptr &key, const std::string &where) {
  switch (key->kind) {
    case Value::Str: return key->s;
    case Value::Int: return std::to_string(key->i);
    case Value::Bool: return key->b ? "True" : "False";
    default:
      fail("a dictionary under `" + (where.empty() ? std::string("<top>") : where) +
           "` has a key of type " + kind_name(key->kind) + " (string and integer keys are read)");
  }
}

std::string describe(const Ptr &v) {
  switch (v->kind) {
    case Value::None: return "None";
    case Value::Bool: return v->b ? "bool True" : "bool False";
    case Value::Int: return "int " + std::to_string(v->i);
    case Value::Float: {
      char buf[64];
      std::snprintf(buf, sizeof buf, "float %.17g", v->f);
      return buf;
    }
    case Value::Str: return "str \"" + (v->s.size() > 40 ? v->s.substr(0, 40) + "..." : v->s) + "\"";
    case Value::Bytes: return "bytes of length " + std::to_string(v->s.size());
    case Value::Global: return "global " + v->s;
    case Value::Object: return "object " + v->s;
    default: return kind_name(v->kind);
  }
}

void walk(const Ptr &v, const std::string &name, Entries &out, int depth) {
  if (depth > 64) {
    fail("`" + name + "` is nested more than 64 levels deep");
  }
  const std::string shown = name.empty() ? std::string("<top>") : name;
  switch (v->kind) {
    case Value::Tensor:
      out.names.push_back(shown);
      out.tensors.push_back(v->tensor);
      break;
    case Value::Dict:
      for (const auto &kv : v->entries) {
        walk(kv.second, join(name, key_text(kv.first, name)), out, depth + 1);
      }
      break;
    case Value::List:
    case Value::Tuple:
      for (size_t k = 0; k < v->items.size(); ++k) {
        walk(v->items[k], join(name, std::to_string(k)), out, depth + 1);
      }
      break;
    case Value::Object:
      if (v->state && v->state->kind == Value::Dict) {
        walk(v->state, name, out, depth + 1);
        break;
      }
      [[fallthrough]];
    default:
      out.other_names.push_back(shown);
      out.other_kinds.push_back(describe(v));
  }
}

}  // namespace

extern "C" {

void jem_pickle_free_error(char *error) { std::free(error); }

// Reads the `torch.save` file at `path` (zip format), tensors on the CPU; `*entries` receives
// the flattened list on success.
char *jem_pickle_load(const char *path, void **entries) {
  try {
    caffe2::serialize::PyTorchStreamReader reader{std::string(path)};
    if (reader.hasRecord("byteorder")) {
      auto [ptr, n] = reader.getRecord("byteorder");
      std::string order(static_cast<const char *>(ptr.get()), n);
      if (order != "little") {
        fail("the tensors are stored " + order + "-endian; only little-endian files are read");
      }
    }
    if (!reader.hasRecord("data.pkl")) {
      fail("the archive has no data.pkl (a TorchScript module, not a torch.save file?)");
    }
    auto [pkl, size] = reader.getRecord("data.pkl");
    std::string pickle(static_cast<const char *>(pkl.get()), size);
    Ptr value = unpickle(pickle, reader);
    auto out = std::make_unique<Entries>();
    walk(value, "", *out, 0);
    *entries = out.release();
    return nullptr;
  } catch (const c10::Error &e) {
    return copy_message(e.what_without_backtrace());
  } catch (const std::exception &e) {
    return copy_message(e.what());
  } catch (...) {
    return copy_message("unknown C++ exception while unpickling");
  }
}

size_t jem_pickle_tensor_count(const void *entries) {
  return static_cast<const Entries *>(entries)->tensors.size();
}

const char *jem_pickle_tensor_name(const void *entries, size_t i) {
  return static_cast<const Entries *>(entries)->names[i].c_str();
}

// A new handle to tensor `i` (owned and freed by the caller, as tch's `C_tensor`).
void *jem_pickle_tensor(const void *entries, size_t i) {
  return new at::Tensor(static_cast<const Entries *>(entries)->tensors[i]);
}

size_t jem_pickle_other_count(const void *entries) {
  return static_cast<const Entries *>(entries)->other_names.size();
}

const char *jem_pickle_other_name(const void *entries, size_t i) {
  return static_cast<const Entries *>(entries)->other_names[i].c_str();
}

const char *jem_pickle_other_kind(const void *entries, size_t i) {
  return static_cast<const Entries *>(entries)->other_kinds[i].c_str();
}

void jem_pickle_free(void *entries) { delete static_cast<Entries *>(entries); }

}  // extern "C"

