// Every bad-data case: a one-line cnp::Error naming the file and the sample, or,
// with skip_bad_samples, the sample recorded in TestSet::skipped.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/files.h"
#include "data/h36m.h"
#include "data_test_util.h"

namespace cnp::data {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

class DataBadData : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    synth_ = testing::work_dir("data_bad_data_synth");
    write_synthetic_h36m(testing::small_synth_options(synth_));
  }
  // A copy of the annotations and box files; images linked unless copied.
  std::string prepare(const std::string& name, bool copy_images = false) {
    const std::string root = testing::work_dir("data_bad_data_" + name);
    fs::copy(synth_ + "/annotations", root + "/annotations", fs::copy_options::recursive);
    fs::copy(synth_ + "/bbox_root", root + "/bbox_root", fs::copy_options::recursive);
    if (copy_images) {
      fs::copy(synth_ + "/images", root + "/images", fs::copy_options::recursive);
    } else {
      fs::create_directory_symlink(fs::absolute(synth_ + "/images"), root + "/images");
    }
    return root;
  }
  static json load(const std::string& path) { return json::parse(read_file(path)); }
  static void save(const std::string& path, const json& doc) {
    write_file_atomic(path, doc.dump());
  }
  static TestSetOptions options(const std::string& root, bool detected = false) {
    TestSetOptions o;
    o.root = root;
    o.protocol = 1;
    if (detected) {
      o.box_source = BoxSource::Detected;
      o.bbox_root_file = root + "/bbox_root/protocol1.json";
    }
    return o;
  }
  // Expects a one-line error holding every needle; returns the message.
  static std::string expect_error(const TestSetOptions& o,
                                  const std::vector<std::string>& needles) {
    try {
      load_test_set(o);
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_EQ(what.find('\n'), std::string::npos) << what;
      for (const auto& n : needles)
        EXPECT_NE(what.find(n), std::string::npos) << "'" << n << "' not in: " << what;
      return what;
    }
    ADD_FAILURE() << "no error";
    return "";
  }
  static void expect_skipped(TestSetOptions o, size_t skipped, size_t samples, int64_t id) {
    o.skip_bad_samples = true;
    const TestSet set = load_test_set(o);
    ASSERT_EQ(set.skipped.size(), skipped);
    EXPECT_EQ(set.samples.size(), samples);
    EXPECT_EQ(set.skipped.front().image_id, id);
    EXPECT_FALSE(set.skipped.front().reason.empty());
  }
  // A sample kept by the subsampling in subject 11's data file: (image index, id, file).
  static std::tuple<size_t, int64_t, std::string> kept_image(const json& data, int nth = 1) {
    int seen = 0;
    for (size_t i = 0; i < data["images"].size(); ++i) {
      const json& img = data["images"][i];
      if (img["frame_idx"].get<int>() % 64 == 0 && seen++ == nth) {
        return {i, img["id"].get<int64_t>(), img["file_name"].get<std::string>()};
      }
    }
    return {0, 0, ""};
  }
  static std::string data_file(const std::string& root) {
    return root + "/annotations/Human36M_subject11_data.json";
  }
  static std::string synth_;
};
std::string DataBadData::synth_;
constexpr size_t kN = testing::kKeptPerSubject;

TEST_F(DataBadData, MissingDetectedBox) {
  const std::string root = prepare("missing_box");
  const std::string file = root + "/bbox_root/protocol1.json";
  json boxes = load(file);
  const int64_t id = boxes[5]["image_id"].get<int64_t>();
  boxes.erase(5);
  save(file, boxes);
  expect_error(options(root, true), {file, "image id " + std::to_string(id), "no detected box"});
  expect_skipped(options(root, true), 1, kN - 1, id);
}

TEST_F(DataBadData, UnknownImageIdInBoxFile) {
  const std::string root = prepare("unknown_box_id");
  const std::string file = root + "/bbox_root/protocol1.json";
  json boxes = load(file);
  json extra = boxes[0];
  extra["image_id"] = 987654321;
  boxes.push_back(extra);
  save(file, boxes);
  expect_error(options(root, true), {file, "987654321"});
  expect_skipped(options(root, true), 1, kN, 987654321);
}

TEST_F(DataBadData, UnknownImageIdInAnnotations) {
  const std::string root = prepare("unknown_ann_id");
  json data = load(data_file(root));
  auto [index, id, name] = kept_image(data);
  for (auto& ann : data["annotations"]) {
    if (ann["image_id"].get<int64_t>() == id) ann["image_id"] = 55555555;
  }
  save(data_file(root), data);
  expect_error(options(root), {data_file(root), "unknown image id 55555555"});
  expect_skipped(options(root), 1, kN - 1, 55555555);
}

TEST_F(DataBadData, MissingImage) {
  const std::string root = prepare("missing_image", true);
  auto [index, id, name] = kept_image(load(data_file(root)));
  fs::remove(root + "/images/" + name);
  expect_error(options(root), {name, "image id " + std::to_string(id), "missing"});
  expect_skipped(options(root), 1, kN - 1, id);
  TestSetOptions unchecked = options(root);
  unchecked.check_images = false;
  EXPECT_EQ(load_test_set(unchecked).samples.size(), kN);
}

TEST_F(DataBadData, ZeroAreaBox) {
  const std::string root = prepare("zero_area");
  json data = load(data_file(root));
  auto [index, id, name] = kept_image(data);
  for (auto& ann : data["annotations"]) {
    if (ann["image_id"].get<int64_t>() == id) ann["bbox"][2] = 0.0;
  }
  save(data_file(root), data);
  expect_error(options(root),
               {data_file(root), "image id " + std::to_string(id), name, "zero-area"});
  expect_skipped(options(root), 1, kN - 1, id);

  // A detected box of zero size as well.
  const std::string file = root + "/bbox_root/protocol1.json";
  json boxes = load(file);
  boxes[2]["bbox"][3] = 0.0;
  save(file, boxes);
  expect_error(
      options(root, true),
      {file, "image id " + std::to_string(boxes[2]["image_id"].get<int64_t>()), "zero-area"});
}

TEST_F(DataBadData, MalformedAndTruncatedJson) {
  const std::string root = prepare("malformed");
  const std::string text = read_file(data_file(root));
  write_file_atomic(data_file(root), text.substr(0, text.size() / 2));
  expect_error(options(root), {data_file(root), "malformed JSON"});
  write_file_atomic(data_file(root), text.substr(0, 1000) + "]]," + text.substr(1000));
  expect_error(options(root), {data_file(root), "malformed JSON"});
  write_file_atomic(data_file(root), text);

  const std::string joints = root + "/annotations/Human36M_subject11_joint_3d.json";
  const std::string joint_text = read_file(joints);
  write_file_atomic(joints, joint_text.substr(0, joint_text.size() - 3));
  expect_error(options(root), {joints, "malformed JSON"});
  write_file_atomic(joints, joint_text);

  const std::string box_file = root + "/bbox_root/protocol1.json";
  write_file_atomic(box_file, "[{\"image_id\": 1, \"bbox\": [1,2,3");
  expect_error(options(root, true), {box_file, "malformed JSON"});
  write_file_atomic(box_file, "");
  expect_error(options(root, true), {box_file, "malformed JSON"});

  fs::remove(root + "/annotations/Human36M_subject11_camera.json");
  expect_error(options(root), {"Human36M_subject11_camera.json"});
}

TEST_F(DataBadData, MissingKeys) {
  const std::string root = prepare("missing_keys");
  const json original = load(data_file(root));
  auto [index, id, name] = kept_image(original);

  json data = original;
  data["images"][index].erase("frame_idx");
  save(data_file(root), data);
  expect_error(options(root), {data_file(root), "image id " + std::to_string(id), "'frame_idx'"});

  data = original;
  data["annotations"][7].erase("bbox");
  save(data_file(root), data);
  expect_error(options(root), {data_file(root), "annotations[7]", "'bbox'"});

  data = original;
  data.erase("annotations");
  save(data_file(root), data);
  expect_error(options(root), {data_file(root), "'annotations'"});

  data = original;
  data["images"][index]["width"] = "wide";
  save(data_file(root), data);
  expect_error(options(root), {data_file(root), "'width'"});
  save(data_file(root), original);

  const std::string cameras = root + "/annotations/Human36M_subject11_camera.json";
  json cam = load(cameras);
  const json cam_original = cam;
  cam["2"].erase("t");
  save(cameras, cam);
  expect_error(options(root), {cameras, "camera '2'", "'t'"});
  cam = cam_original;
  cam.erase("3");
  save(cameras, cam);
  std::string what = expect_error(options(root), {cameras, "no camera 3", "image id"});
  TestSetOptions skip = options(root);
  skip.skip_bad_samples = true;
  EXPECT_EQ(load_test_set(skip).skipped.size(), kN / 4);
  save(cameras, cam_original);

  const std::string joints = root + "/annotations/Human36M_subject11_joint_3d.json";
  json joint = load(joints);
  const json joint_original = joint;
  const json& img = original["images"][index];
  const std::string a = std::to_string(img["action_idx"].get<int>());
  const std::string sa = std::to_string(img["subaction_idx"].get<int>());
  const std::string fr = std::to_string(img["frame_idx"].get<int>());
  joint[a][sa].erase(fr);
  save(joints, joint);
  expect_error(options(root), {joints, "image id " + std::to_string(id), "no joints"});
  expect_skipped(options(root), 4, kN - 4, id);  // the 4 cameras share the frame's joints

  joint = joint_original;
  joint[a][sa][fr].erase(3);  // 16 joints
  save(joints, joint);
  expect_error(options(root), {joints, "action " + a, "frame " + fr, "17x3"});

  fs::remove(data_file(root));
  expect_error(options(root), {data_file(root)});
}

// Absurd numbers would give silent nonsense (a 1e30 box gave PA-MPJPE 5.8e27 mm): each is
// an error naming the file and the sample, or, with skip_bad_samples, a counted skip.
TEST_F(DataBadData, AbsurdBoxesDepthsAndFocalLengths) {
  const std::string root = prepare("absurd");
  const std::string box_file = root + "/bbox_root/protocol1.json";
  const json boxes = load(box_file);
  const std::string id3 = std::to_string(boxes[3]["image_id"].get<int64_t>());
  struct Case {
    std::function<void(json&)> edit;
    std::vector<std::string> needles;
  };
  const Case box_cases[] = {
      {[](json& b) {
         b[3]["bbox"] = {1e30, 1e30, 1e30, 1e30};
       },
       {"detected box [1e+30"}},
      {[](json& b) { b[3]["bbox"][0] = 5000.0; }, {"outside the 240x240 image"}},
      {[](json& b) { b[3]["bbox"][2] = 1e6; }, {"far larger"}},
      {[](json& b) { b[3]["root_cam"][2] = 0.0; }, {"root_cam", "positive depth"}},
      {[](json& b) { b[3]["root_cam"][2] = -2500.0; }, {"root_cam", "positive depth"}},
  };
  for (const Case& c : box_cases) {
    json edited = boxes;
    c.edit(edited);
    save(box_file, edited);
    std::vector<std::string> needles = c.needles;
    needles.insert(needles.end(), {box_file, "image id " + id3});
    expect_error(options(root, true), needles);
    expect_skipped(options(root, true), 1, kN - 1, std::stoll(id3));
  }
  // JSON has no infinity literal; 1e999 overflows a double and is named as such.
  json marked = boxes;
  marked[3]["bbox"][2] = 123456.5;
  std::string text = marked.dump();
  text.replace(text.find("123456.5"), 8, "1e999");
  write_file_atomic(box_file, text);
  expect_error(options(root, true), {box_file, "number overflow", "1e999"});
  save(box_file, boxes);

  // The same in the (streamed) annotations.
  json data = load(data_file(root));
  auto [index, id, name] = kept_image(data);
  for (auto& ann : data["annotations"])
    if (ann["image_id"].get<int64_t>() == id) ann["bbox"][2] = 123456.5;
  text = data.dump();
  text.replace(text.find("123456.5"), 8, "1e999");
  write_file_atomic(data_file(root), text);
  expect_error(options(root), {data_file(root), "number overflow", "1e999"});
  save(data_file(root), data);
  const std::string original_data = read_file(data_file(root));

  // A focal length of 0 (or non-finite) in one camera: every sample it took is named.
  const std::string cameras = root + "/annotations/Human36M_subject11_camera.json";
  const json cam = load(cameras);
  const int camera = data["images"][index]["cam_idx"].get<int>();
  for (const json& focal : {json{0.0, 0.0}, json{1000.0, -1.0}}) {
    json edited = cam;
    edited[std::to_string(camera)]["f"] = focal;
    save(cameras, edited);
    expect_error(options(root),
                 {cameras, "image id", "camera " + std::to_string(camera), "focal length"});
    TestSetOptions skip = options(root);
    skip.skip_bad_samples = true;
    const TestSet set = load_test_set(skip);
    EXPECT_EQ(set.skipped.size(), kN / 4);
    EXPECT_EQ(set.samples.size(), kN - kN / 4);
  }
  // A camera behind which the subject stands: ground-truth root depth <= 0.
  json behind = cam;
  behind[std::to_string(camera)]["t"][2] = -1e7;
  save(cameras, behind);
  expect_error(options(root), {"Human36M_subject11_joint_3d.json", "image id",
                               "ground-truth root depth", "not positive"});
  save(cameras, cam);
  EXPECT_EQ(load_test_set(options(root)).samples.size(), kN);
}

// Found by fuzz_annotations: an id of 1e35 was cast to int64 (undefined behaviour). Integer
// fields must hold integers that fit; 100.0 still reads as 100.
TEST_F(DataBadData, IntegerFieldsMustBeIntegers) {
  const std::string root = prepare("integers");
  const json original = load(data_file(root));
  auto [index, id, name] = kept_image(original);
  const std::tuple<const char*, json, const char*> cases[] = {
      {"id", 1e35, "is not an integer"},
      {"frame_idx", 2.5, "is not an integer"},
      {"cam_idx", 18446744073709551615ull, "is not an integer"},
      {"width", 1e12, "is out of range"},
      {"height", int64_t(1) << 40, "is out of range"}};
  for (const auto& [field, value, problem] : cases) {
    json data = original;
    data["images"][index][field] = value;
    save(data_file(root), data);
    expect_error(options(root), {data_file(root), "images[" + std::to_string(index) + "]",
                                 "'" + std::string(field) + "' " + problem});
  }
  json data = original;
  data["images"][index]["width"] = 240.0;
  save(data_file(root), data);
  EXPECT_EQ(load_test_set(options(root)).samples.size(), kN);
}

}  // namespace
}  // namespace cnp::data
