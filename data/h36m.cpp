// Human3.6M reader (3DMPPE layout). The per-subject data and joint files are
// hundreds of MB, so they are streamed through nlohmann::json's SAX interface into
// compact records (a DOM of them would take gigabytes); the handlers below are the
// small state machines that keep only what a test set needs. Small files (cameras,
// RootNet boxes) are parsed as DOM.
#include "data/h36m.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "common/error.h"
#include "common/files.h"
#include "data/preprocess.h"

namespace cnp::data {
namespace {
using json = nlohmann::json;

// ---------------------------------------------------------------------------
// Generic SAX base: counts container depth, turns every scalar into a Scalar and
// reports malformed JSON as a one-line cnp::Error naming the file.
struct Scalar {
  enum Kind { Null, Bool, Int, Float, String } kind = Null;
  int64_t i = 0;
  double d = 0;
  std::string s;
  bool exact_int = false;  // i holds the value exactly (an integral number within int64)
  bool is_number() const { return kind == Int || kind == Float; }
};

class SaxBase : public nlohmann::json_sax<json> {
 public:
  explicit SaxBase(std::string path) : path_(std::move(path)) {}
  bool null() override { return emit(Scalar{}); }
  bool boolean(bool v) override {
    Scalar s;
    s.kind = Scalar::Bool;
    s.i = v;
    s.d = v;
    return emit(std::move(s));
  }
  bool number_integer(number_integer_t v) override { return integer(v); }
  bool number_unsigned(number_unsigned_t v) override {
    if (v <= static_cast<number_unsigned_t>(INT64_MAX)) return integer(static_cast<int64_t>(v));
    Scalar s;  // beyond int64: usable only as a float
    s.kind = Scalar::Float;
    s.d = static_cast<double>(v);
    return emit(std::move(s));
  }
  bool number_float(number_float_t v, const string_t&) override {
    Scalar s;
    s.kind = Scalar::Float;
    s.d = v;
    // 100.0 is the integer 100; 1e35 or 2.5 is no integer (and casting 1e35 is undefined).
    if (v >= -9.2e18 && v <= 9.2e18 && v == std::floor(v)) {
      s.i = static_cast<int64_t>(v);
      s.exact_int = true;
    }
    return emit(std::move(s));
  }
  bool string(string_t& v) override {
    Scalar s;
    s.kind = Scalar::String;
    s.s = std::move(v);
    return emit(std::move(s));
  }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override {
    ++depth_;
    return on_start(true);
  }
  bool end_object() override {
    on_end(true);
    --depth_;
    return true;
  }
  bool start_array(std::size_t) override {
    ++depth_;
    return on_start(false);
  }
  bool end_array() override {
    on_end(false);
    --depth_;
    return true;
  }
  bool key(string_t& k) override { return on_key(k); }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception& ex) override {
    std::string what = ex.what();
    // nlohmann prefixes "[json.exception.parse_error.101] parse error at line 1, column 5: ".
    auto pos = what.find("] ");
    if (pos != std::string::npos) what = what.substr(pos + 2);
    throw Error(path_ + ": malformed JSON at byte " + std::to_string(position) + ": " + what);
  }

  void parse_text(const std::string& text) {
    json::sax_parse(text, this, json::input_format_t::json, true, false);
  }

 protected:
  virtual bool emit(Scalar&& value) = 0;
  virtual bool on_start(bool is_object) = 0;
  virtual void on_end(bool is_object) = 0;
  virtual bool on_key(const std::string& key) = 0;
  bool integer(int64_t v) {
    Scalar s;
    s.kind = Scalar::Int;
    s.i = v;
    s.d = static_cast<double>(v);
    s.exact_int = true;
    return emit(std::move(s));
  }

  std::string path_;
  int depth_ = 0;
};

// ---------------------------------------------------------------------------
// Human36M_subject{S}_data.json
struct ImageRecord {
  int64_t id = 0;
  std::string file_name, action_name;
  int width = 0, height = 0, subject = 0, action_idx = 0, subaction = 0, camera = 0, frame = 0;
};
struct AnnotationRecord {
  int64_t id = 0, image_id = 0;
  std::array<double, 4> bbox{};
};

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
uint64_t joint_key(int action, int subaction, int frame) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(action)) << 40) ^
         (static_cast<uint64_t>(static_cast<uint32_t>(subaction)) << 32) ^
         static_cast<uint32_t>(frame);
}

using WorldJoints = std::array<double, 17 * 3>;

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

struct Camera {
  std::array<double, 9> R{};
  std::array<double, 3> t{};
  std::array<double, 2> f{}, c{};
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

std::string sample_name(const std::string& file, int64_t image_id, const std::string& image_file) {
  return file + ": image id " + std::to_string(image_id) + " (" + image_file + ")";
}

template <size_t N>
bool all_finite(const std::array<double, N>& values) {
  return std::all_of(values.begin(), values.end(), [](double v) { return std::isfinite(v); });
}

// "[1, 2, 3e+30]": short enough for a one-line message whatever the magnitude.
template <size_t N>
std::string numbers_text(const std::array<double, N>& values) {
  std::string out = "[";
  for (size_t k = 0; k < N; ++k) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.6g", values[k]);
    out += (k ? ", " : "") + std::string(buffer);
  }
  return out + "]";
}

// A detected box larger than this many image sides cannot hold a person in the image;
// RootNet's boxes are about half the image side.
constexpr double kMaxBoxPerImageSide = 4.0;

// Why a detected box (x, y, w, h) is unusable for a width x height image, or "".
std::string detected_box_problem(const std::array<double, 4>& b, int width, int height) {
  if (!all_finite(b)) return "non-finite detected box " + numbers_text(b);
  if (!(b[2] > 0 && b[3] > 0)) return "zero-area detected box " + numbers_text(b);
  if (b[2] > kMaxBoxPerImageSide * width || b[3] > kMaxBoxPerImageSide * height ||
      b[0] + b[2] <= 0 || b[1] + b[3] <= 0 || b[0] >= width || b[1] >= height)
    return "detected box " + numbers_text(b) + " lies outside the " + std::to_string(width) + "x" +
           std::to_string(height) + " image or is far larger than it";
  return "";
}

// Why a camera cannot project (a focal length of 0 divides by zero), or "".
std::string camera_problem(int index, const Camera& c) {
  const std::string name = "camera " + std::to_string(index);
  if (!all_finite(c.f) || !(c.f[0] > 0 && c.f[1] > 0))
    return name + " has focal length " + numbers_text(c.f) + " (must be finite and positive)";
  if (!all_finite(c.c)) return name + " has a non-finite principal point " + numbers_text(c.c);
  if (!all_finite(c.R) || !all_finite(c.t)) return name + " has a non-finite R or t";
  return "";
}

}  // namespace

// ---------------------------------------------------------------------------
const std::array<const char*, kNumJoints>& joint_names() {
  static const std::array<const char*, kNumJoints> names = {
      "Pelvis",  "R_Hip",   "R_Knee",     "R_Ankle", "L_Hip",   "L_Knee",
      "L_Ankle", "Torso",   "Neck",       "Nose",    "Head",    "L_Shoulder",
      "L_Elbow", "L_Wrist", "R_Shoulder", "R_Elbow", "R_Wrist", "Thorax"};
  return names;
}

const std::array<const char*, 15>& action_names() {
  static const std::array<const char*, 15> names = {
      "Directions", "Discussion", "Eating",  "Greeting",    "Phoning",
      "Posing",     "Purchases",  "Sitting", "SittingDown", "Smoking",
      "Photo",      "Waiting",    "Walking", "WalkDog",     "WalkTogether"};
  return names;
}

const std::vector<std::pair<int, int>>& flip_pairs() {
  static const std::vector<std::pair<int, int>> pairs = {{1, 4},   {2, 5},   {3, 6},
                                                         {14, 11}, {15, 12}, {16, 13}};
  return pairs;
}

std::vector<int> protocol_subjects(int protocol) {
  if (protocol == 1) return {11};
  if (protocol == 2) return {9, 11};
  throw Error("protocol " + std::to_string(protocol) + ": unknown (expected 1 or 2)");
}

BoxSource parse_box_source(const std::string& name) {
  if (name == "gt") return BoxSource::GroundTruth;
  if (name == "detected") return BoxSource::Detected;
  throw Error("bbox '" + name + "': expected 'gt' or 'detected'");
}

const char* box_source_name(BoxSource source) {
  return source == BoxSource::GroundTruth ? "gt" : "detected";
}

std::string image_file_name(int subject, int action_idx, int subaction, int camera, int frame) {
  char folder[64], frame_part[32];
  std::snprintf(folder, sizeof folder, "s_%02d_act_%02d_subact_%02d_ca_%02d", subject, action_idx,
                subaction, camera);
  std::snprintf(frame_part, sizeof frame_part, "_%06d.jpg", frame + 1);
  return std::string(folder) + "/" + folder + frame_part;
}

std::string annotation_path(const std::string& root, int subject, const std::string& kind) {
  return (std::filesystem::path(root) / "annotations" /
          ("Human36M_subject" + std::to_string(subject) + "_" + kind + ".json"))
      .string();
}

std::string image_path(const std::string& root, const Sample& sample) {
  return (std::filesystem::path(root) / "images" / sample.image_file).string();
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

TestSet load_test_set(const TestSetOptions& options) {
  if (options.sample_every <= 0) {
    throw Error("sample_every " + std::to_string(options.sample_every) + ": must be positive");
  }
  std::vector<int> subjects =
      options.subjects.empty() ? protocol_subjects(options.protocol) : options.subjects;
  std::sort(subjects.begin(), subjects.end());
  subjects.erase(std::unique(subjects.begin(), subjects.end()), subjects.end());

  TestSet set;
  auto bad = [&](int64_t image_id, const std::string& message) {
    if (!options.skip_bad_samples) throw Error(message);
    set.skipped.push_back({image_id, message});
  };

  // RootNet boxes by image id.
  const bool detected = options.box_source == BoxSource::Detected;
  std::unordered_map<int64_t, DetectedBox> detected_boxes;
  if (detected) {
    if (options.bbox_root_file.empty()) {
      throw Error("dataset.bbox_root: required for detected boxes");
    }
    for (const auto& box : read_bbox_root_file(options.bbox_root_file)) {
      if (!detected_boxes.emplace(box.image_id, box).second) {
        throw Error(options.bbox_root_file + ": image id " + std::to_string(box.image_id) +
                    " appears twice");
      }
    }
  }
  std::vector<int64_t> all_ids;

  for (int subject : subjects) {
    const std::string data_file = annotation_path(options.root, subject, "data");
    const std::string camera_file = annotation_path(options.root, subject, "camera");
    const std::string joint_file = annotation_path(options.root, subject, "joint_3d");
    set.source_files.insert(set.source_files.end(), {data_file, camera_file, joint_file});

    DataJsonHandler data(data_file, options.sample_every);
    data.parse_text(read_file(data_file));
    if (!data.saw_images) throw Error(data_file + ": missing key 'images'");
    if (!data.saw_annotations) throw Error(data_file + ": missing key 'annotations'");
    const auto cameras = read_cameras(camera_file);
    JointJsonHandler joints(joint_file, options.sample_every);
    joints.parse_text(read_file(joint_file));

    std::vector<int64_t> ids = data.all_image_ids;
    std::sort(ids.begin(), ids.end());
    if (std::adjacent_find(ids.begin(), ids.end()) != ids.end()) {
      throw Error(data_file + ": image id " +
                  std::to_string(*std::adjacent_find(ids.begin(), ids.end())) + " appears twice");
    }
    all_ids.insert(all_ids.end(), ids.begin(), ids.end());
    std::unordered_map<int64_t, size_t> kept;
    kept.reserve(data.kept_images.size() * 2);
    for (size_t i = 0; i < data.kept_images.size(); ++i) kept[data.kept_images[i].id] = i;

    for (const auto& ann : data.annotations) {
      auto it = kept.find(ann.image_id);
      if (it == kept.end()) {
        if (!std::binary_search(ids.begin(), ids.end(), ann.image_id)) {
          bad(ann.image_id, data_file + ": annotation " + std::to_string(ann.id) +
                                " refers to unknown image id " + std::to_string(ann.image_id));
        }
        continue;  // a frame the subsampling drops
      }
      const ImageRecord& img = data.kept_images[it->second];
      Sample s;
      s.image_id = img.id;
      s.image_file = img.file_name;
      s.subject = img.subject;
      s.action_idx = img.action_idx;
      s.subaction = img.subaction;
      s.camera = img.camera;
      s.frame = img.frame;
      s.image_width = img.width;
      s.image_height = img.height;

      auto cam = cameras.find(img.camera);
      if (cam == cameras.end()) {
        bad(img.id, sample_name(camera_file, img.id, img.file_name) + ": no camera " +
                        std::to_string(img.camera));
        continue;
      }
      auto joint = joints.joints.find(joint_key(img.action_idx, img.subaction, img.frame));
      if (joint == joints.joints.end()) {
        bad(img.id, sample_name(joint_file, img.id, img.file_name) + ": no joints for action " +
                        std::to_string(img.action_idx) + " subaction " +
                        std::to_string(img.subaction) + " frame " + std::to_string(img.frame));
        continue;
      }
      if (const std::string problem = camera_problem(img.camera, cam->second); !problem.empty()) {
        bad(img.id, sample_name(camera_file, img.id, img.file_name) + ": " + problem);
        continue;
      }
      if (!all_finite(joint->second)) {
        bad(img.id, sample_name(joint_file, img.id, img.file_name) +
                        ": non-finite ground-truth joint coordinates");
        continue;
      }
      if (img.width <= 0 || img.height <= 0) {
        bad(img.id, sample_name(data_file, img.id, img.file_name) + ": image size " +
                        std::to_string(img.width) + "x" + std::to_string(img.height) +
                        " is not positive");
        continue;
      }
      if (img.action_idx < 2 || img.action_idx > 16) {
        bad(img.id, sample_name(data_file, img.id, img.file_name) + ": action_idx " +
                        std::to_string(img.action_idx) + " outside 2..16");
        continue;
      }
      // Thorax in world coordinates, then world -> camera: X_cam = R X_world + t.
      std::array<std::array<double, 3>, kNumJoints> world{};
      for (int j = 0; j < 17; ++j) {
        for (int k = 0; k < 3; ++k) world[j][k] = joint->second[j * 3 + k];
      }
      for (int k = 0; k < 3; ++k) world[kThorax][k] = (world[11][k] + world[14][k]) * 0.5;
      const Camera& c = cam->second;
      for (int j = 0; j < kNumJoints; ++j) {
        for (int r = 0; r < 3; ++r) {
          s.joints_cam[j][r] = c.R[r * 3 + 0] * world[j][0] + c.R[r * 3 + 1] * world[j][1] +
                               c.R[r * 3 + 2] * world[j][2] + c.t[r];
        }
      }
      s.f = c.f;
      s.c = c.c;

      if (detected) {
        auto box = detected_boxes.find(img.id);
        if (box == detected_boxes.end()) {
          bad(img.id, sample_name(options.bbox_root_file, img.id, img.file_name) +
                          ": no detected box for this sample");
          continue;
        }
        s.bbox = box->second.bbox;
        s.root_cam = box->second.root_cam;
        const std::string problem = detected_box_problem(s.bbox, img.width, img.height);
        if (!problem.empty()) {
          bad(img.id, sample_name(options.bbox_root_file, img.id, img.file_name) + ": " + problem);
          continue;
        }
        if (!all_finite(s.root_cam) || !(s.root_cam[2] > 0)) {
          bad(img.id, sample_name(options.bbox_root_file, img.id, img.file_name) + ": root_cam " +
                          numbers_text(s.root_cam) + " needs a finite, positive depth (mm)");
          continue;
        }
      } else {
        if (!all_finite(ann.bbox)) {
          bad(img.id, sample_name(data_file, img.id, img.file_name) + ": non-finite bbox " +
                          numbers_text(ann.bbox));
          continue;
        }
        if (!process_gt_bbox(ann.bbox, img.width, img.height, s.bbox)) {
          bad(img.id, sample_name(data_file, img.id, img.file_name) +
                          ": zero-area or empty bbox [" + std::to_string(ann.bbox[0]) + ", " +
                          std::to_string(ann.bbox[1]) + ", " + std::to_string(ann.bbox[2]) + ", " +
                          std::to_string(ann.bbox[3]) + "] (the reference drops it)");
          continue;
        }
        s.root_cam = s.joints_cam[kRootJoint];
        if (!(s.root_cam[2] > 0)) {
          bad(img.id, sample_name(joint_file, img.id, img.file_name) +
                          ": ground-truth root depth " + numbers_text(s.root_cam) + " in camera " +
                          std::to_string(img.camera) + " is not positive (mm)");
          continue;
        }
      }
      if (options.check_images) {
        const std::string file = image_path(options.root, s);
        if (!file_exists(file)) {
          bad(img.id,
              sample_name(data_file, img.id, img.file_name) + ": image file missing: " + file);
          continue;
        }
      }
      set.samples.push_back(std::move(s));
    }
  }

  if (detected) {
    set.source_files.push_back(options.bbox_root_file);
    std::sort(all_ids.begin(), all_ids.end());
    std::vector<int64_t> unknown;
    for (const auto& [id, box] : detected_boxes) {
      if (!std::binary_search(all_ids.begin(), all_ids.end(), id)) unknown.push_back(id);
    }
    std::sort(unknown.begin(), unknown.end());
    for (int64_t id : unknown) {
      bad(id, options.bbox_root_file + ": image id " + std::to_string(id) +
                  " is not in the annotations of the selected subjects");
    }
  }
  return set;
}

}  // namespace cnp::data
