// The pickle machine of jem's `torch.save` reader: the opcodes of protocols 2 to 5 and a
// whitelist of globals (OrderedDict, the tensor and parameter rebuild functions,
// `copyreg._reconstructor`), nothing executed. See jem_pickle.cpp.

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


namespace jem_pickle {
namespace {


// The scalar type of a `torch.<Name>Storage` global.
bool storage_dtype(const std::string &global, at::ScalarType *out) {
  static const std::map<std::string, at::ScalarType> types = {
      {"torch.FloatStorage", at::kFloat},     {"torch.DoubleStorage", at::kDouble},
      {"torch.HalfStorage", at::kHalf},       {"torch.BFloat16Storage", at::kBFloat16},
      {"torch.LongStorage", at::kLong},       {"torch.IntStorage", at::kInt},
      {"torch.ShortStorage", at::kShort},     {"torch.CharStorage", at::kChar},
      {"torch.ByteStorage", at::kByte},       {"torch.BoolStorage", at::kBool},
      {"torch.ComplexFloatStorage", at::kComplexFloat},
      {"torch.ComplexDoubleStorage", at::kComplexDouble},
      {"torch.UntypedStorage", at::kByte},
  };
  auto it = types.find(global);
  if (it == types.end()) {
    return false;
  }
  *out = it->second;
  return true;
}

std::vector<int64_t> int_tuple(const Ptr &v, const char *what) {
  if (v->kind != Value::Tuple && v->kind != Value::List) {
    fail(std::string("the ") + what + " of a tensor is a " + kind_name(v->kind) + ", not a tuple");
  }
  std::vector<int64_t> out;
  for (const auto &e : v->items) {
    if (e->kind != Value::Int) {
      fail(std::string("the ") + what + " of a tensor holds a " + kind_name(e->kind));
    }
    out.push_back(e->i);
  }
  return out;
}

class Machine {
 public:
  Machine(const std::string &pickle, caffe2::serialize::PyTorchStreamReader &reader)
      : data_(pickle), reader_(reader) {}

  Ptr run() {
    while (true) {
      size_t at = pos_;
      uint8_t op = byte();
      try {
        if (op == '.') {  // STOP
          if (stack_.size() != 1) {
            fail("the pickle ends with " + std::to_string(stack_.size()) + " values on the stack");
          }
          return stack_.back();
        }
        step(op);
      } catch (const c10::Error &e) {
        fail("at byte " + std::to_string(at) + " of data.pkl (opcode 0x" + hex(op) +
             "): " + e.what_without_backtrace());
      } catch (const std::exception &e) {
        fail("at byte " + std::to_string(at) + " of data.pkl (opcode 0x" + hex(op) +
             "): " + e.what());
      }
    }
  }

 private:
  static std::string hex(uint8_t op) {
    const char *digits = "0123456789abcdef";
    return std::string{digits[op >> 4], digits[op & 15]};
  }

  uint8_t byte() {
    if (pos_ >= data_.size()) {
      fail("data.pkl ends without a STOP opcode (truncated)");
    }
    return static_cast<uint8_t>(data_[pos_++]);
  }

  std::string bytes(uint64_t n) {
    if (n > data_.size() - pos_) {
      fail("data.pkl is truncated (a " + std::to_string(n) + "-byte value runs past its end)");
    }
    std::string out = data_.substr(pos_, n);
    pos_ += n;
    return out;
  }

  uint64_t le(int width) {
    std::string b = bytes(width);
    uint64_t v = 0;
    for (int k = width - 1; k >= 0; --k) {
      v = (v << 8) | static_cast<uint8_t>(b[k]);
    }
    return v;
  }

  std::string line() {
    size_t end = data_.find('\n', pos_);
    if (end == std::string::npos) {
      fail("data.pkl is truncated (an unterminated text argument)");
    }
    std::string out = data_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return out;
  }

  Ptr pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) {
      fail("the pickle pops an empty stack");
    }
    Ptr v = stack_.back();
    stack_.pop_back();
    return v;
  }

  Ptr &top() {
    if (stack_.empty()) {
      fail("the pickle reads an empty stack");
    }
    return stack_.back();
  }

  // The values above the last mark, removing them and the mark.
  std::vector<Ptr> pop_mark() {
    if (marks_.empty()) {
      fail("the pickle closes a MARK it never opened");
    }
    size_t start = marks_.back();
    marks_.pop_back();
    std::vector<Ptr> out(stack_.begin() + start, stack_.end());
    stack_.resize(start);
    return out;
  }

  Ptr memo_get(uint64_t k) {
    auto it = memo_.find(k);
    if (it == memo_.end()) {
      fail("the pickle refers to memo entry " + std::to_string(k) + ", which it never stored");
    }
    return it->second;
  }

  static void set_items(const Ptr &dict, const std::vector<Ptr> &kv) {
    if (dict->kind != Value::Dict) {
      fail(std::string("SETITEMS on a ") + kind_name(dict->kind));
    }
    if (kv.size() % 2 != 0) {
      fail("SETITEMS with an odd number of values");
    }
    for (size_t k = 0; k < kv.size(); k += 2) {
      dict->entries.emplace_back(kv[k], kv[k + 1]);
    }
  }

  static void append(const Ptr &list, const std::vector<Ptr> &items) {
    if (list->kind != Value::List) {
      fail(std::string("APPENDS on a ") + kind_name(list->kind));
    }
    list->items.insert(list->items.end(), items.begin(), items.end());
  }

  Ptr tuple(std::vector<Ptr> items) {
    auto t = make(Value::Tuple);
    t->items = std::move(items);
    return t;
  }

  // A storage of the archive: `data/<key>`, read once and shared by every view of it.
  Ptr load_storage(const Ptr &pid) {
    if (pid->kind != Value::Tuple || pid->items.size() < 5 || pid->items[0]->kind != Value::Str ||
        pid->items[0]->s != "storage") {
      fail("a persistent id that is not a tensor storage");
    }
    const Ptr &type = pid->items[1];
    const Ptr &key = pid->items[2];
    const Ptr &numel = pid->items[4];
    at::ScalarType dtype;
    if (type->kind != Value::Global || !storage_dtype(type->s, &dtype)) {
      fail("a storage of unknown type " + (type->kind == Value::Global ? type->s : std::string(kind_name(type->kind))));
    }
    if (key->kind != Value::Str || numel->kind != Value::Int || numel->i < 0) {
      fail("a storage with a malformed key or size");
    }
    auto cached = storages_.find(key->s);
    if (cached != storages_.end()) {
      return make_tensor(cached->second);
    }
    const std::string record = "data/" + key->s;
    if (!reader_.hasRecord(record)) {
      fail("the archive has no record `" + record + "` for a storage of " +
           std::to_string(numel->i) + " elements");
    }
    size_t item = c10::elementSize(dtype);
    size_t want = static_cast<size_t>(numel->i) * item;
    size_t size = reader_.getRecordSize(record);
    if (size != want) {
      fail("record `" + record + "` holds " + std::to_string(size) + " bytes, its storage needs " +
           std::to_string(want));
    }
    at::Tensor storage_tensor;
    if (want == 0) {
      storage_tensor = at::empty({0}, at::TensorOptions().dtype(dtype));
    } else {
      auto [ptr, n] = reader_.getRecord(record);
      (void)n;
      at::Storage storage(c10::Storage::use_byte_size_t(), want, std::move(ptr),
                          /*allocator=*/nullptr, /*resizable=*/false);
      storage_tensor = at::empty({0}, at::TensorOptions().dtype(dtype)).set_(storage);
    }
    storages_.emplace(key->s, storage_tensor);
    return make_tensor(storage_tensor);
  }

  static at::Tensor tensor_arg(const Ptr &v, const char *what) {
    if (v->kind != Value::Tensor) {
      fail(std::string(what) + " is a " + kind_name(v->kind) + ", not a tensor storage");
    }
    return v->tensor;
  }

  // `torch._utils._rebuild_tensor(_v2)(storage, offset, size, stride, ...)`.
  static Ptr rebuild_tensor(const Ptr &args) {
    if (args->kind != Value::Tuple || args->items.size() < 4) {
      fail("_rebuild_tensor_v2 called without (storage, offset, size, stride)");
    }
    at::Tensor storage = tensor_arg(args->items[0], "the storage of a tensor");
    if (args->items[1]->kind != Value::Int) {
      fail("the storage offset of a tensor is not an int");
    }
    int64_t offset = args->items[1]->i;
    auto size = int_tuple(args->items[2], "size");
    auto stride = int_tuple(args->items[3], "stride");
    if (size.size() != stride.size()) {
      fail("a tensor with " + std::to_string(size.size()) + " sizes and " +
           std::to_string(stride.size()) + " strides");
    }
    // The last element the view reaches must lie inside the storage.
    int64_t numel = storage.numel();
    int64_t last = offset;
    bool empty = false;
    for (size_t d = 0; d < size.size(); ++d) {
      if (size[d] < 0 || stride[d] < 0) {
        fail("a tensor with a negative size or stride");
      }
      empty = empty || size[d] == 0;
      last += (size[d] - 1) * stride[d];
    }
    if (!empty && (offset < 0 || last >= numel)) {
      fail("a tensor view (offset " + std::to_string(offset) + ") reaches past its storage of " +
           std::to_string(numel) + " elements");
    }
    at::Tensor t = at::empty({0}, storage.options()).set_(storage.storage(), offset, size, stride);
    return make_tensor(t);
  }

  Ptr call(const Ptr &fn, const Ptr &args) {
    if (fn->kind != Value::Global) {
      // The reduce of an object whose global was not interpreted: keep it opaque.
      auto obj = make(Value::Object);
      obj->s = fn->kind == Value::Object ? fn->s : kind_name(fn->kind);
      return obj;
    }
    const std::string &name = fn->s;
    auto arg = [&](size_t k) -> Ptr {
      if (args->kind != Value::Tuple || args->items.size() <= k) {
        fail(name + " called with too few arguments");
      }
      return args->items[k];
    };
    if (name == "collections.OrderedDict" || name == "builtins.dict") {
      auto d = make(Value::Dict);
      if (args->kind == Value::Tuple && !args->items.empty() && args->items[0]->kind == Value::List) {
        for (const auto &pair : args->items[0]->items) {
          if (pair->kind == Value::Tuple && pair->items.size() == 2) {
            d->entries.emplace_back(pair->items[0], pair->items[1]);
          }
        }
      }
      return d;
    }
    if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
      return rebuild_tensor(args);
    }
    if (name == "torch._utils._rebuild_parameter" ||
        name == "torch._utils._rebuild_parameter_with_state") {
      tensor_arg(arg(0), "the data of a parameter");
      return arg(0);
    }
    if (name == "torch._tensor._rebuild_from_type_v2") {
      // (function, type, arguments, state): the base tensor, Python attributes dropped.
      return call(arg(0), arg(2));
    }
    if (name == "torch.device") {
      return make_str(Value::Str, arg(0)->kind == Value::Str ? arg(0)->s : "device");
    }
    if (name == "copyreg._reconstructor" || name == "copy_reg._reconstructor") {
      // (class, base, state) of a plain object; its attributes come with BUILD.
      auto obj = make(Value::Object);
      obj->s = arg(0)->kind == Value::Global ? arg(0)->s : "object";
      return obj;
    }
    auto obj = make(Value::Object);
    obj->s = name;
    return obj;
  }

  void step(uint8_t op) {
    switch (op) {
      case 0x80: byte(); break;                  // PROTO
      case 0x95: le(8); break;                   // FRAME
      case '(': marks_.push_back(stack_.size()); break;  // MARK
      case '0': pop(); break;                    // POP
      case '1': pop_mark(); break;               // POP_MARK
      case '2': stack_.push_back(top()); break;  // DUP
      case 'N': stack_.push_back(make(Value::None)); break;
      case 0x88:
      case 0x89: {  // NEWTRUE, NEWFALSE
        auto v = make(Value::Bool);
        v->b = op == 0x88;
        stack_.push_back(v);
      } break;
      case 'J': stack_.push_back(make_int(static_cast<int32_t>(le(4)))); break;  // BININT
      case 'K': stack_.push_back(make_int(static_cast<int64_t>(le(1)))); break;  // BININT1
      case 'M': stack_.push_back(make_int(static_cast<int64_t>(le(2)))); break;  // BININT2
      case 0x8a: {  // LONG1
        uint64_t n = le(1);
        if (n > 8) {
          fail("an integer of " + std::to_string(n) + " bytes (more than 64 bits)");
        }
        uint64_t v = n == 0 ? 0 : le(static_cast<int>(n));
        if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) {
          v |= ~uint64_t(0) << (8 * n);  // sign-extend
        }
        stack_.push_back(make_int(static_cast<int64_t>(v)));
      } break;
      case 'I': {  // INT (text), also True/False in protocol 0
        std::string t = line();
        if (t == "01" || t == "00") {
          auto v = make(Value::Bool);
          v->b = t == "01";
          stack_.push_back(v);
        } else {
          stack_.push_back(make_int(std::stoll(t)));
        }
      } break;
      case 'L': {  // LONG (text)
        std::string t = line();
        if (!t.empty() && t.back() == 'L') {
          t.pop_back();
        }
        stack_.push_back(make_int(std::stoll(t)));
      } break;
      case 'G': {  // BINFLOAT, big-endian
        std::string b = bytes(8);
        uint64_t bits = 0;
        for (int k = 0; k < 8; ++k) {
          bits = (bits << 8) | static_cast<uint8_t>(b[k]);
        }
        auto v = make(Value::Float);
        std::memcpy(&v->f, &bits, 8);
        stack_.push_back(v);
      } break;
      case 'X': stack_.push_back(make_str(Value::Str, bytes(le(4)))); break;     // BINUNICODE
      case 0x8c: stack_.push_back(make_str(Value::Str, bytes(le(1)))); break;    // SHORT_BINUNICODE
      case 0x8d: stack_.push_back(make_str(Value::Str, bytes(le(8)))); break;    // BINUNICODE8
      case 'T': stack_.push_back(make_str(Value::Str, bytes(le(4)))); break;     // BINSTRING
      case 'U': stack_.push_back(make_str(Value::Str, bytes(le(1)))); break;     // SHORT_BINSTRING
      case 'B': stack_.push_back(make_str(Value::Bytes, bytes(le(4)))); break;   // BINBYTES
      case 'C': stack_.push_back(make_str(Value::Bytes, bytes(le(1)))); break;   // SHORT_BINBYTES
      case 0x8e: stack_.push_back(make_str(Value::Bytes, bytes(le(8)))); break;  // BINBYTES8
      case '}': stack_.push_back(make(Value::Dict)); break;   // EMPTY_DICT
      case ']': stack_.push_back(make(Value::List)); break;   // EMPTY_LIST
      case ')': stack_.push_back(tuple({})); break;           // EMPTY_TUPLE
      case 'd': {  // DICT
        auto d = make(Value::Dict);
        set_items(d, pop_mark());
        stack_.push_back(d);
      } break;
      case 'l': {  // LIST
        auto l = make(Value::List);
        l->items = pop_mark();
        stack_.push_back(l);
      } break;
      case 't': stack_.push_back(tuple(pop_mark())); break;  // TUPLE
      case 0x85: {  // TUPLE1
        auto a = pop();
        stack_.push_back(tuple({a}));
      } break;
      case 0x86: {  // TUPLE2
        auto b = pop();
        auto a = pop();
        stack_.push_back(tuple({a, b}));
      } break;
      case 0x87: {  // TUPLE3
        auto c = pop();
        auto b = pop();
        auto a = pop();
        stack_.push_back(tuple({a, b, c}));
      } break;
      case 's': {  // SETITEM
        auto v = pop();
        auto k = pop();
        set_items(top(), {k, v});
      } break;
      case 'u': {  // SETITEMS
        auto kv = pop_mark();
        set_items(top(), kv);
      } break;
      case 'a': {  // APPEND
        auto v = pop();
        append(top(), {v});
      } break;
      case 'e': {  // APPENDS
        auto items = pop_mark();
        append(top(), items);
      } break;
      case 'q': memo_[le(1)] = top(); break;       // BINPUT
      case 'r': memo_[le(4)] = top(); break;       // LONG_BINPUT
      case 'p': memo_[std::stoull(line())] = top(); break;  // PUT
      case 0x94: memo_[memo_.size()] = top(); break;  // MEMOIZE
      case 'h': stack_.push_back(memo_get(le(1))); break;   // BINGET
      case 'j': stack_.push_back(memo_get(le(4))); break;   // LONG_BINGET
      case 'g': stack_.push_back(memo_get(std::stoull(line()))); break;  // GET
      case 'c': {  // GLOBAL
        std::string module = line();
        std::string name = line();
        stack_.push_back(make_str(Value::Global, module + "." + name));
      } break;
      case 0x93: {  // STACK_GLOBAL
        auto name = pop();
        auto module = pop();
        if (name->kind != Value::Str || module->kind != Value::Str) {
          fail("STACK_GLOBAL without two strings");
        }
        stack_.push_back(make_str(Value::Global, module->s + "." + name->s));
      } break;
      case 'R': {  // REDUCE
        auto args = pop();
        auto fn = pop();
        stack_.push_back(call(fn, args));
      } break;
      case 0x81: {  // NEWOBJ
        auto args = pop();
        auto cls = pop();
        auto obj = make(Value::Object);
        obj->s = cls->kind == Value::Global ? cls->s : "object";
        if (cls->kind == Value::Global &&
            (cls->s == "collections.OrderedDict" || cls->s == "builtins.dict")) {
          obj = make(Value::Dict);
        }
        stack_.push_back(obj);
      } break;
      case 'b': {  // BUILD
        auto state = pop();
        Ptr &obj = top();
        // An OrderedDict's state is the state dict's `_metadata` (module versions): dropped.
        if (obj->kind == Value::Object) {
          if (state->kind == Value::Tuple && state->items.size() == 2) {
            state = state->items[0];  // (dict, slots)
          }
          obj->state = state;
        }
      } break;
      case 'Q': {  // BINPERSID
        auto pid = pop();
        stack_.push_back(load_storage(pid));
      } break;
      default:
        fail("opcode 0x" + hex(op) + " is not one torch.save writes");
    }
  }

  const std::string &data_;
  caffe2::serialize::PyTorchStreamReader &reader_;
  size_t pos_ = 0;
  std::vector<Ptr> stack_;
  std::vector<size_t> marks_;
  std::map<uint64_t, Ptr> memo_;
  std::map<std::string, at::Tensor> storages_;
};

}  // namespace

Ptr unpickle(const std::string &pickle, caffe2::serialize::PyTorchStreamReader &reader) {
  return Machine(pickle, reader).run();
}

}  // namespace jem_pickle
