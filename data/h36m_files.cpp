// Readers of the Human3.6M annotation files (3DMPPE layout). The per-subject data and
// joint files are hundreds of MB, so they are streamed through nlohmann::json's SAX
// interface into compact records (a DOM of them would take gigabytes); the handlers below,
// built on SaxBase (json_sax.h), are the small state machines that keep only what a test set
// needs. Small files (cameras, RootNet boxes) are parsed as DOM.
#include "data/h36m_files.h"

#include <cstdint>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/files.h"
#include "data/json_sax.h"

namespace cnp::data {
namespace {
using json = nlohmann::json;
using sax::SaxBase;
using sax::Scalar;

// ---------------------------------------------------------------------------
// Human36M_subject{S}_data.json

enum ImageField {
  kId,
  kFileName,
  kWidth,
  kHeight,
  kSubject,
  kActionName,
  kActionIdx,
  kSubactionIdx,
  kCamIdx,
  kFrameIdx,
  kNumImageFields
};
const char* const kImageFieldNames[kNumImageFields] = {
    "id",          "file_name",  "width",         "height",  "subject",
    "action_name", "action_idx", "subaction_idx", "cam_idx", "frame_idx"};

class DataJsonHandler : public SaxBase {
 public:
  DataJsonHandler(std::string path, int sample_every)
      : SaxBase(std::move(path)), sample_every_(sample_every) {}

  std::vector<ImageRecord> kept_images;       // frame_idx % sample_every == 0
  std::vector<int64_t> all_image_ids;         // every image, for unknown-id checks
  std::vector<AnnotationRecord> annotations;  // file order
  bool saw_images = false, saw_annotations = false;

 protected:
  enum class Section { Other, Images, Annotations };

  bool on_key(const std::string& key) override {
    if (depth_ == 1) {
      section_ = key == "images"        ? Section::Images
                 : key == "annotations" ? Section::Annotations
                                        : Section::Other;
      if (section_ == Section::Images) saw_images = true;
      if (section_ == Section::Annotations) saw_annotations = true;
    } else if (depth_ == 3) {
      field_ = key;
    }
    return true;
  }

  bool on_start(bool is_object) override {
    if (section_ == Section::Other) return true;
    if (depth_ == 2 && is_object) fail("'" + section_name() + "' is not a list");
    if (depth_ == 3) {
      if (!is_object) fail(record_name() + " is not an object");
      image_ = ImageRecord{};
      annotation_ = AnnotationRecord{};
      seen_ = 0;
      bbox_count_ = 0;
      field_.clear();
    }
    if (depth_ == 4 && section_ == Section::Annotations && field_ == "bbox") {
      if (is_object) fail(record_name() + ": 'bbox' is not a list");
      seen_ |= 1u;
      bbox_count_ = 0;
    }
    return true;
  }

  void on_end(bool is_object) override {
    if (section_ == Section::Other) return;
    if (depth_ == 1) {
      section_ = Section::Other;
      return;
    }
    if (depth_ == 3 && is_object) {
      if (section_ == Section::Images) finish_image();
      if (section_ == Section::Annotations) finish_annotation();
      ++index_[section_ == Section::Images ? 0 : 1];
    }
    if (depth_ == 4 && section_ == Section::Annotations && field_ == "bbox" && bbox_count_ != 4) {
      fail(record_name() + ": 'bbox' must have 4 numbers, has " + std::to_string(bbox_count_));
    }
  }

  bool emit(Scalar&& v) override {
    if (section_ == Section::Other) return true;
    if (depth_ == 1) fail("'" + section_name() + "' is not a list");
    if (depth_ == 2) fail(record_name() + " is not an object");
    if (section_ == Section::Images && depth_ == 3) return image_field(std::move(v));
    if (section_ == Section::Annotations) {
      if (depth_ == 3) {
        if (field_ == "id") {
          annotation_.id = number(v);
          seen_ |= 4u;
        } else if (field_ == "image_id") {
          annotation_.image_id = number(v);
          seen_ |= 2u;
        } else if (field_ == "bbox") {
          fail(record_name() + ": 'bbox' is not a list");
        }
      } else if (depth_ == 4 && field_ == "bbox") {
        if (!v.is_number()) fail(record_name() + ": 'bbox' holds a non-number");
        if (bbox_count_ < 4) annotation_.bbox[bbox_count_] = v.d;
        ++bbox_count_;
      }
    }
    return true;
  }

 private:
  std::string section_name() const {
    return section_ == Section::Images ? "images" : "annotations";
  }
  std::string record_name() const {
    return section_name() + "[" + std::to_string(index_[section_ == Section::Images ? 0 : 1]) + "]";
  }
  [[noreturn]] void fail(const std::string& what) const { throw Error(path_ + ": " + what); }

  int64_t number(const Scalar& v) const {
    if (!v.is_number()) fail(record_name() + ": '" + field_ + "' is not a number");
    if (!v.exact_int) fail(record_name() + ": '" + field_ + "' is not an integer");
    return v.i;
  }
  // Image sizes and indices: an int, not an int64 that would wrap.
  int small_number(const Scalar& v) const {
    const int64_t n = number(v);
    if (n < INT32_MIN || n > INT32_MAX) fail(record_name() + ": '" + field_ + "' is out of range");
    return static_cast<int>(n);
  }

  bool image_field(Scalar&& v) {
    for (int f = 0; f < kNumImageFields; ++f) {
      if (field_ != kImageFieldNames[f]) continue;
      seen_ |= 1u << f;
      switch (f) {
        case kId:
          image_.id = number(v);
          break;
        case kFileName:
          if (v.kind != Scalar::String) fail(record_name() + ": 'file_name' is not a string");
          image_.file_name = std::move(v.s);
          break;
        case kActionName:
          image_.action_name = std::move(v.s);
          break;
        case kWidth:
          image_.width = small_number(v);
          break;
        case kHeight:
          image_.height = small_number(v);
          break;
        case kSubject:
          image_.subject = small_number(v);
          break;
        case kActionIdx:
          image_.action_idx = small_number(v);
          break;
        case kSubactionIdx:
          image_.subaction = small_number(v);
          break;
        case kCamIdx:
          image_.camera = small_number(v);
          break;
        case kFrameIdx:
          image_.frame = small_number(v);
          break;
      }
      break;
    }
    return true;
  }

  void finish_image() {
    for (int f = 0; f < kNumImageFields; ++f) {
      if (f == kActionName) continue;  // informational; action_idx is what counts
      if (!(seen_ & (1u << f))) {
        std::string who = (seen_ & 1u) ? " (image id " + std::to_string(image_.id) + ")" : "";
        fail(record_name() + who + ": missing key '" + kImageFieldNames[f] + "'");
      }
    }
    all_image_ids.push_back(image_.id);
    if (image_.frame % sample_every_ == 0) kept_images.push_back(std::move(image_));
  }

  void finish_annotation() {
    const char* missing = !(seen_ & 2u) ? "image_id" : !(seen_ & 1u) ? "bbox" : nullptr;
    if (missing) {
      std::string who =
          (seen_ & 2u) ? " (image id " + std::to_string(annotation_.image_id) + ")" : "";
      fail(record_name() + who + ": missing key '" + missing + "'");
    }
    annotations.push_back(annotation_);
  }

  int sample_every_;
  Section section_ = Section::Other;
  std::string field_;
  ImageRecord image_;
  AnnotationRecord annotation_;
  unsigned seen_ = 0;
  int bbox_count_ = 0;
  int64_t index_[2] = {0, 0};
};

// ---------------------------------------------------------------------------
// Human36M_subject{S}_joint_3d.json: {"action": {"subaction": {"frame": 17x3}}}

class JointJsonHandler : public SaxBase {
 public:
  JointJsonHandler(std::string path, int sample_every)
      : SaxBase(std::move(path)), sample_every_(sample_every) {}
  std::unordered_map<uint64_t, WorldJoints> joints;

 protected:
  bool on_key(const std::string& key) override {
    if (depth_ >= 1 && depth_ <= 3) ids_[depth_ - 1] = parse_index(key);
    if (depth_ == 3) keep_ = ids_[2] % sample_every_ == 0;
    return true;
  }
  bool on_start(bool is_object) override {
    if (depth_ <= 3 && !is_object) fail("expected an object at " + where(depth_ - 1));
    if (depth_ == 4 && is_object) fail(where(3) + ": joints must be a 17x3 list");
    if (depth_ == 4) {
      count_ = 0;
      rows_ = 0;
    }
    if (depth_ == 5) ++rows_;
    if (depth_ > 5) fail(where(3) + ": joints must be a 17x3 list");
    return true;
  }
  void on_end(bool) override {
    if (depth_ == 4 && (count_ != 51 || rows_ != 17)) {
      fail(where(3) + ": joints must be a 17x3 list, got " + std::to_string(count_) +
           " numbers in " + std::to_string(rows_) + " rows");
    }
    if (depth_ == 4 && keep_) joints[joint_key(ids_[0], ids_[1], ids_[2])] = current_;
  }
  bool emit(Scalar&& v) override {
    if (depth_ != 5) fail("unexpected value at " + where(depth_ - 1));
    if (!v.is_number()) fail(where(3) + ": joints hold a non-number");
    if (count_ < 51) current_[count_] = v.d;
    ++count_;
    return true;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { throw Error(path_ + ": " + what); }
  std::string where(int level) const {
    static const char* names[3] = {"action", "subaction", "frame"};
    std::string out;
    for (int l = 0; l < std::min(level, 3); ++l) {
      if (!out.empty()) out += " ";
      out += std::string(names[l]) + " " + std::to_string(ids_[l]);
    }
    return out.empty() ? "top level" : out;
  }
  int parse_index(const std::string& key) const {
    char* end = nullptr;
    long v = std::strtol(key.c_str(), &end, 10);
    if (key.empty() || *end != '\0') fail("key '" + key + "' is not an integer index");
    return static_cast<int>(v);
  }

  int sample_every_;
  int ids_[3] = {0, 0, 0};
  bool keep_ = false;
  int count_ = 0, rows_ = 0;
  WorldJoints current_{};
};

json parse_json_file(const std::string& path) {
  const std::string text = read_file(path);
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    std::string what = e.what();
    auto pos = what.find("] ");
    if (pos != std::string::npos) what = what.substr(pos + 2);
    throw Error(path + ": malformed JSON at byte " + std::to_string(e.byte) + ": " + what);
  } catch (const json::exception& e) {
    // e.g. a number too large for a double (1e999): out_of_range, not parse_error.
    std::string what = e.what();
    auto pos = what.find("] ");
    if (pos != std::string::npos) what = what.substr(pos + 2);
    throw Error(path + ": malformed JSON: " + what);
  }
}

template <size_t N>
std::array<double, N> flat_numbers(const json& value, const std::string& where) {
  std::array<double, N> out{};
  size_t n = 0;
  auto visit = [&](const json& v, auto&& self) -> void {
    if (v.is_array()) {
      for (const auto& e : v) self(e, self);
    } else if (v.is_number()) {
      if (n < N) out[n] = v.get<double>();
      ++n;
    } else {
      throw Error(where + ": holds a non-number");
    }
  };
  visit(value, visit);
  if (n != N)
    throw Error(where + ": expected " + std::to_string(N) + " numbers, got " + std::to_string(n));
  return out;
}

}  // namespace

uint64_t joint_key(int action, int subaction, int frame) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(action)) << 40) ^
         (static_cast<uint64_t>(static_cast<uint32_t>(subaction)) << 32) ^
         static_cast<uint32_t>(frame);
}

SubjectData read_subject_data(const std::string& path, int sample_every) {
  DataJsonHandler handler(path, sample_every);
  handler.parse_text(read_file(path));
  if (!handler.saw_images) throw Error(path + ": missing key 'images'");
  if (!handler.saw_annotations) throw Error(path + ": missing key 'annotations'");
  SubjectData out;
  out.kept_images = std::move(handler.kept_images);
  out.all_image_ids = std::move(handler.all_image_ids);
  out.annotations = std::move(handler.annotations);
  return out;
}

std::unordered_map<uint64_t, WorldJoints> read_world_joints(const std::string& path,
                                                            int sample_every) {
  JointJsonHandler handler(path, sample_every);
  handler.parse_text(read_file(path));
  return std::move(handler.joints);
}

std::unordered_map<int, Camera> read_cameras(const std::string& path) {
  json doc = parse_json_file(path);
  if (!doc.is_object()) throw Error(path + ": expected an object of cameras");
  std::unordered_map<int, Camera> cameras;
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    const std::string where = path + ": camera '" + it.key() + "'";
    int index = 0;
    try {
      size_t used = 0;
      index = std::stoi(it.key(), &used);
      if (used != it.key().size()) throw std::invalid_argument("x");
    } catch (const std::exception&) {
      throw Error(where + ": key is not an integer camera index");
    }
    if (!it.value().is_object()) throw Error(where + ": not an object");
    Camera cam;
    for (const char* key : {"R", "t", "f", "c"}) {
      if (!it.value().contains(key)) throw Error(where + ": missing key '" + key + "'");
    }
    cam.R = flat_numbers<9>(it.value()["R"], where + " 'R'");
    cam.t = flat_numbers<3>(it.value()["t"], where + " 't'");
    cam.f = flat_numbers<2>(it.value()["f"], where + " 'f'");
    cam.c = flat_numbers<2>(it.value()["c"], where + " 'c'");
    cameras[index] = cam;
  }
  return cameras;
}

std::vector<DetectedBox> read_bbox_root_file(const std::string& path) {
  json doc = parse_json_file(path);
  if (!doc.is_array()) throw Error(path + ": expected a list of {image_id, bbox, root_cam}");
  std::vector<DetectedBox> boxes;
  boxes.reserve(doc.size());
  for (size_t i = 0; i < doc.size(); ++i) {
    const json& e = doc[i];
    std::string where = path + ": entry " + std::to_string(i);
    if (!e.is_object()) throw Error(where + ": not an object");
    for (const char* key : {"image_id", "bbox", "root_cam"}) {
      if (!e.contains(key)) throw Error(where + ": missing key '" + key + "'");
    }
    if (!e["image_id"].is_number_integer()) throw Error(where + ": 'image_id' is not an integer");
    DetectedBox box;
    box.image_id = e["image_id"].get<int64_t>();
    where += " (image id " + std::to_string(box.image_id) + ")";
    box.bbox = flat_numbers<4>(e["bbox"], where + " 'bbox'");
    box.root_cam = flat_numbers<3>(e["root_cam"], where + " 'root_cam'");
    boxes.push_back(box);
  }
  return boxes;
}

}  // namespace cnp::data
