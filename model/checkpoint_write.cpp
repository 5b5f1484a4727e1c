// write_checkpoint_zip: the zip layout and pickle that torch.save writes, for
// synthetic checkpoints that both torch.load and read_checkpoint accept.
#include <set>

#include "common/error.h"
#include "common/files.h"
#include "model/checkpoint.h"
#include "model/pickle.h"
#include "model/zip_archive.h"

namespace cnp::model {

void write_checkpoint_zip(const std::string& path, const NamedTensors& tensors,
                          std::optional<int64_t> epoch, const std::string& archive_name,
                          const std::string& container_key) {
  if (archive_name.empty() || archive_name.find_first_of("/\\\n") != std::string::npos)
    throw Error(path + ": invalid archive name '" + archive_name + "'");
  std::set<std::string> seen;
  for (const auto& [name, t] : tensors) {
    if (!seen.insert(name).second) throw Error(path + ": duplicate tensor name '" + name + "'");
    int64_t numel = 1;
    for (int64_t d : t.shape) {
      if (d < 0) throw Error(path + ": tensor '" + name + "' has a negative dimension");
      numel *= d;
    }
    if (t.bytes.size() != static_cast<size_t>(numel) * dtype_size(t.dtype))
      throw Error(path + ": tensor '" + name + "' has " + std::to_string(t.bytes.size()) +
                  " bytes, its shape needs " +
                  std::to_string(static_cast<size_t>(numel) * dtype_size(t.dtype)));
  }

  std::string pkl;
  pickle::Writer w(&pkl);
  w.proto();
  if (!container_key.empty()) {
    w.empty_dict();
    w.mark();
    if (epoch) {
      w.unicode("epoch");
      w.integer(*epoch);
    }
    w.unicode(container_key);
  }
  // OrderedDict(name -> _rebuild_tensor_v2(storage, 0, shape, stride, False, OrderedDict()))
  w.global("collections", "OrderedDict");
  w.empty_tuple();
  w.reduce();
  w.mark();
  for (size_t k = 0; k < tensors.size(); ++k) {
    const TensorData& t = tensors[k].second;
    w.unicode(tensors[k].first);
    w.global("torch._utils", "_rebuild_tensor_v2");
    w.mark();
    w.mark();  // persistent id ('storage', type, key, location, numel)
    w.unicode("storage");
    w.global("torch", pickle::storage_type_name(t.dtype));
    w.unicode(std::to_string(k));
    w.unicode("cpu");
    w.integer(t.numel());
    w.tuple();
    w.binpersid();
    w.integer(0);
    w.mark();
    for (int64_t d : t.shape) w.integer(d);
    w.tuple();
    w.mark();
    std::vector<int64_t> stride(t.shape.size(), 1);
    for (size_t d = t.shape.size(); d-- > 1;) stride[d - 1] = stride[d] * t.shape[d];
    for (int64_t s : stride) w.integer(s);
    w.tuple();
    w.boolean(false);
    w.global("collections", "OrderedDict");
    w.empty_tuple();
    w.reduce();
    w.tuple();
    w.reduce();
  }
  w.setitems();
  if (!container_key.empty()) w.setitems();
  w.stop();

  const std::string prefix = archive_name + "/";
  const std::string version = "3\n";
  std::vector<zip::Entry> entries;
  entries.push_back({prefix + "data.pkl", pkl.data(), pkl.size()});
  for (size_t k = 0; k < tensors.size(); ++k)
    entries.push_back({prefix + "data/" + std::to_string(k), tensors[k].second.bytes.data(),
                       tensors[k].second.bytes.size()});
  entries.push_back({prefix + "version", version.data(), version.size()});
  std::string archive;
  try {
    archive = zip::write_stored(entries);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
  write_file_atomic(path, archive);
}

}  // namespace cnp::model
