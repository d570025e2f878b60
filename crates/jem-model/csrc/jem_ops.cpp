// ATen operators that tch 0.26 does not expose, behind a small C ABI for jem-model's `ops`
// module. Tensors cross the boundary as `at::Tensor*`, which is what tch's `C_tensor` handle
// is; a returned tensor is heap-allocated here and owned (and freed) by tch afterwards.
// Every function catches C++ exceptions and returns them as a malloc'ed message (NULL on
// success), which the Rust side turns into an error and frees with `jem_free_error`.

#include <ATen/autocast_mode.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/leaky_relu.h>

#include <cstdlib>
#include <cstring>
#include <exception>

namespace {

char *message(const char *what) {
  size_t n = std::strlen(what);
  char *out = static_cast<char *>(std::malloc(n + 1));
  if (out != nullptr) {
    std::memcpy(out, what, n + 1);
  }
  return out;
}

at::DeviceType device_type(int device) {
  return device == 1 ? at::kCUDA : at::kCPU;
}

}  // namespace

extern "C" {

void jem_free_error(char *error) { std::free(error); }

// LeakyReLU with any slope, as one fused kernel with its own backward (tch only has the
// 0.01 slope).
char *jem_leaky_relu(const void *x, double slope, void **out) {
  try {
    const auto *t = static_cast<const at::Tensor *>(x);
    *out = new at::Tensor(at::leaky_relu(*t, slope));
    return nullptr;
  } catch (const std::exception &e) {
    return message(e.what());
  } catch (...) {
    return message("unknown C++ exception in leaky_relu");
  }
}

// The same tensor in channels-last (NHWC) memory order.
char *jem_channels_last(const void *x, void **out) {
  try {
    const auto *t = static_cast<const at::Tensor *>(x);
    *out = new at::Tensor(t->contiguous(at::MemoryFormat::ChannelsLast));
    return nullptr;
  } catch (const std::exception &e) {
    return message(e.what());
  } catch (...) {
    return message("unknown C++ exception in channels_last");
  }
}

// Enters (enter = 1) or leaves (enter = 0) a bfloat16 autocast region for `device`
// (0 = CPU, 1 = CUDA) on the calling thread. `*previous` receives the enabled state before
// the call, which the matching leave call restores. Leaving the outermost region clears the
// cache of casted weights.
char *jem_autocast(int device, int enter, int restore, int *previous) {
  try {
    at::DeviceType d = device_type(device);
    *previous = at::autocast::is_autocast_enabled(d) ? 1 : 0;
    if (enter) {
      at::autocast::set_autocast_dtype(d, at::kBFloat16);
      at::autocast::set_autocast_enabled(d, true);
      at::autocast::increment_nesting();
    } else {
      at::autocast::set_autocast_enabled(d, restore != 0);
      if (at::autocast::decrement_nesting() == 0) {
        at::autocast::clear_cache();
      }
    }
    return nullptr;
  } catch (const std::exception &e) {
    return message(e.what());
  } catch (...) {
    return message("unknown C++ exception in autocast");
  }
}

}  // extern "C"
