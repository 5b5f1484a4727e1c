#pragma once
// The one JSON form of an Architecture (job results, `cnp variants`, `cnp inspect`).
// A template so callers keep their own nlohmann flavour (ordered or sorted keys).
#include <nlohmann/json.hpp>

#include "model/architecture.h"

namespace cnp::model {

template <class Json = nlohmann::ordered_json>
Json architecture_to_json(const Architecture& a) {
  Json j;
  j["depths"] = a.depths;
  j["dims"] = a.dims;
  j["head_channels"] = a.head_channels;
  j["head_upsample"] = a.head_upsample;
  j["depth_dim"] = a.depth_dim;
  j["joints"] = a.joints;
  return j;
}

}  // namespace cnp::model
