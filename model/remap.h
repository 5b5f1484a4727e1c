#pragma once
// Checkpoint key remapping: an ordered, readable list of rules that turn the key
// schemes found in the wild into the names our network registers (REFERENCE.md §3).
#include <functional>
#include <string>
#include <vector>

#include "model/checkpoint.h"

namespace cnp::model {

struct RemapRule {
  std::string name;         // shown in logs, e.g. "strip DataParallel 'module.' prefix"
  std::string description;  // one line on what it rewrites
  // Rewrites one (key, tensor); returns false to leave the entry untouched.
  std::function<bool(std::string& key, TensorData& tensor)> apply;
};

const std::vector<RemapRule>& default_remap_rules();

// Applies every rule in order to every entry; throws cnp::Error if two keys collide.
NamedTensors remap_keys(NamedTensors tensors,
                        const std::vector<RemapRule>& rules = default_remap_rules());

}  // namespace cnp::model
