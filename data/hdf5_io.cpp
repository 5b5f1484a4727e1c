// HDF5 helpers for the test-set cache (hdf5_io.h).
#include "data/hdf5_io.h"

#include <mutex>

namespace cnp::data::hdf5 {
namespace {

// The operating system's reason behind an HDF5 failure ("No space left on device"), which
// HDF5 records in its error stack as "... error message = '<strerror>' ..."; "" if none.
std::string hdf5_system_reason() {
  std::string reason;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_DOWNWARD,
      [](unsigned, const H5E_error2_t* e, void* out) -> herr_t {
        auto* text = static_cast<std::string*>(out);
        const std::string desc = e->desc ? e->desc : "";
        const std::string key = "error message = '";
        const size_t at = desc.find(key);
        if (text->empty() && at != std::string::npos) {
          const size_t end = desc.find('\'', at + key.size());
          *text =
              desc.substr(at + key.size(), end == std::string::npos ? end : end - at - key.size());
        }
        return 0;
      },
      &reason);
  return reason;
}

}  // namespace

void quiet() {
  static std::once_flag once;
  std::call_once(once, [] {
    // No library shutdown at exit: HDF5 1.10 crashes there re-closing a file whose close
    // failed (a full disk), turning a clean one-line error into a segfault. Every file is
    // closed explicitly, so the shutdown has nothing to flush.
    H5dont_atexit();
  });
  thread_local bool silenced = false;
  if (silenced) return;
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  silenced = true;
}

[[noreturn]] void fail(const std::string& what) {
  const std::string reason = hdf5_system_reason();
  throw Error(reason.empty() ? what : what + ": " + reason);
}

Handle checked(hid_t id, herr_t (*close)(hid_t), const std::string& what) {
  if (id < 0) fail(what);
  return Handle(id, close);
}
void check(herr_t status, const std::string& what) {
  if (status < 0) fail(what);
}

Handle vlen_string_type() {
  Handle t(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(t.get(), H5T_VARIABLE);
  H5Tset_cset(t.get(), H5T_CSET_UTF8);
  return t;
}

void write_string_attribute(hid_t object, const std::string& path, const char* name,
                            const std::string& value) {
  Handle type = vlen_string_type();
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle attr = checked(H5Acreate2(object, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
                        H5Aclose, path + ": cannot create attribute '" + name + "'");
  const char* text = value.c_str();
  check(H5Awrite(attr.get(), type.get(), &text), path + ": cannot write attribute '" + name + "'");
}

void write_int_attribute(hid_t object, const std::string& path, const char* name, int64_t value) {
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle attr =
      checked(H5Acreate2(object, name, H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT),
              H5Aclose, path + ": cannot create attribute '" + name + "'");
  check(H5Awrite(attr.get(), H5T_NATIVE_INT64, &value),
        path + ": cannot write attribute '" + name + "'");
}

std::string read_string_attribute(hid_t object, const std::string& path, const char* name) {
  Handle attr = checked(H5Aopen(object, name, H5P_DEFAULT), H5Aclose,
                        path + ": missing attribute '" + name + "'");
  Handle type = vlen_string_type();
  char* text = nullptr;
  check(H5Aread(attr.get(), type.get(), &text),
        path + ": attribute '" + name + "' is not a string");
  std::string value = text ? text : "";
  H5free_memory(text);
  return value;
}

int64_t read_int_attribute(hid_t object, const std::string& path, const char* name) {
  Handle attr = checked(H5Aopen(object, name, H5P_DEFAULT), H5Aclose,
                        path + ": missing attribute '" + name + "'");
  int64_t value = 0;
  check(H5Aread(attr.get(), H5T_NATIVE_INT64, &value),
        path + ": attribute '" + name + "' is not an integer");
  return value;
}

}  // namespace cnp::data::hdf5
