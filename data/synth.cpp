// Synthetic Human3.6M: a stick-figure person (plausible 17-joint skeleton, pose
// varying per action and frame) seen by four realistic cameras, rendered with OpenCV
// onto textured backgrounds, written in the exact 3DMPPE layout. Hand-written
// because no library generates this layout; it only needs to be realistic enough
// that crops, boxes and the geometry are non-trivial and checkable.
#include "data/synth.h"

#include <atomic>
#include <cmath>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>
#include <random>
#include <set>
#include <thread>

#include "common/error.h"
#include "common/files.h"
#include "data/h36m.h"
#include "data/jpeg.h"
#include "data/preprocess.h"

namespace cnp::data {
namespace {
using json = nlohmann::json;
using Vec3 = std::array<double, 3>;

constexpr int kSubjects[2] = {9, 11};
constexpr double kPi = 3.14159265358979323846;

// Portable deterministic randomness: mt19937_64's output sequence is fixed by the
// standard, the std distributions are not, so the conversions are done here.
class Rng {
 public:
  explicit Rng(uint64_t seed) : engine_(seed) {}
  double uniform(double lo, double hi) {
    return lo + (hi - lo) * static_cast<double>(engine_() >> 11) * (1.0 / 9007199254740992.0);
  }
  double normal(double sigma) {  // Box-Muller
    double u1 = uniform(1e-12, 1.0), u2 = uniform(0.0, 1.0);
    return sigma * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * kPi * u2);
  }

 private:
  std::mt19937_64 engine_;
};

uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  h ^= h >> 31;
  h *= 0xbf58476d1ce4e5b9ULL;
  return h ^ (h >> 29);
}
template <typename... T>
uint64_t seed_of(uint64_t seed, T... values) {
  uint64_t h = mix(0x243f6a8885a308d3ULL, seed);
  ((h = mix(h, static_cast<uint64_t>(values))), ...);
  return h;
}

Vec3 add(const Vec3& a, const Vec3& b) {
  return {a[0] + b[0], a[1] + b[1], a[2] + b[2]};
}
Vec3 sub(const Vec3& a, const Vec3& b) {
  return {a[0] - b[0], a[1] - b[1], a[2] - b[2]};
}
Vec3 scale(const Vec3& a, double s) {
  return {a[0] * s, a[1] * s, a[2] * s};
}
Vec3 cross(const Vec3& a, const Vec3& b) {
  return {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
}
Vec3 normalized(const Vec3& a) {
  double n = std::sqrt(a[0] * a[0] + a[1] * a[1] + a[2] * a[2]);
  return scale(a, 1.0 / n);
}

struct Camera {
  std::array<double, 9> R{};
  Vec3 t{};
  std::array<double, 2> f{}, c{};
  Vec3 to_camera(const Vec3& X) const {
    Vec3 out{};
    for (int r = 0; r < 3; ++r)
      out[r] = R[r * 3] * X[0] + R[r * 3 + 1] * X[1] + R[r * 3 + 2] * X[2] + t[r];
    return out;
  }
  std::array<double, 2> project(const Vec3& X) const {
    Vec3 p = to_camera(X);
    return {p[0] / p[2] * f[0] + c[0], p[1] / p[2] * f[1] + c[1]};
  }
};

// Four cameras around the capture area (world: z up, mm), ~5 m from its centre.
Camera make_camera(uint64_t seed, int subject, int cam, int image_size) {
  Rng rng(seed_of(seed, 1, subject, cam));
  const double angle = (45.0 + 90.0 * (cam - 1) + rng.uniform(-8, 8)) * kPi / 180.0;
  const double distance = rng.uniform(4700, 5600);
  const Vec3 centre{distance * std::cos(angle), distance * std::sin(angle),
                    rng.uniform(1300, 1700)};
  const Vec3 target{rng.uniform(-100, 100), rng.uniform(-100, 100), rng.uniform(850, 1000)};
  const Vec3 forward = normalized(sub(target, centre));
  const Vec3 right = normalized(cross(forward, {0, 0, 1}));
  const Vec3 down = cross(forward, right);
  Camera c;
  for (int k = 0; k < 3; ++k) {
    c.R[k] = right[k];
    c.R[3 + k] = down[k];
    c.R[6 + k] = forward[k];
  }
  const Vec3 rc = c.to_camera(centre);  // R C with t = 0
  c.t = scale(rc, -1.0);
  const double s = image_size / 1000.0;
  c.f = {1145.0 * s * rng.uniform(0.995, 1.005), 1145.0 * s * rng.uniform(0.995, 1.005)};
  c.c = {image_size / 2.0 + rng.uniform(-4, 4) * s, image_size / 2.0 + rng.uniform(-4, 4) * s};
  return c;
}

// The 17 Human3.6M joints in world coordinates (mm) for one frame.
std::array<Vec3, 17> make_pose(uint64_t seed, int subject, int action, int subaction, int frame) {
  Rng person(seed_of(seed, 2, subject));
  const double body = person.uniform(0.93, 1.07);  // limb length scale per subject
  Rng seq(seed_of(seed, 3, subject, action, subaction));
  Rng noise(seed_of(seed, 4, subject, action, subaction, frame));
  const bool sitting = action == 9 || action == 10;  // Sitting, SittingDown
  const bool walking = action >= 14;                 // Walking, WalkDog, WalkTogether
  const double phase = frame * (walking ? 0.09 : 0.03) + seq.uniform(0, 2 * kPi);
  const double swing = walking ? 0.45 : seq.uniform(0.05, 0.25);
  auto jitter = [&](double s) { return noise.normal(s); };

  // Body frame: x = the person's left, y = forward, z = up; pelvis at the origin.
  std::array<Vec3, 17> j{};
  const double hip = 115 * body, thigh = 440 * body, shin = 430 * body;
  const double upper = 285 * body, fore = 250 * body;
  auto limb = [](double side, double flex, double abduct) -> Vec3 {
    return {side * std::sin(abduct), std::sin(flex) * std::cos(abduct),
            -std::cos(flex) * std::cos(abduct)};
  };
  for (int side = 0; side < 2; ++side) {  // 0: right (joints 1-3), 1: left (4-6)
    const double sx = side == 0 ? -1.0 : 1.0;
    const double sign = side == 0 ? 1.0 : -1.0;
    double flex = sitting ? 1.45 : sign * swing * std::sin(phase) + jitter(0.05);
    double knee =
        sitting ? 1.5 : std::max(0.0, 0.6 * swing * (1 + std::sin(phase + sign)) + jitter(0.05));
    double abduct = 0.06 + std::abs(jitter(0.04));
    const int base = side == 0 ? 1 : 4;
    j[base] = {sx * hip, 0, 0};
    j[base + 1] = add(j[base], scale(limb(sx, flex, abduct), thigh));
    j[base + 2] = add(j[base + 1], scale(limb(sx, flex - knee, abduct), shin));
  }
  j[7] = {0, 0, 235 * body};
  j[8] = {0, 0, 480 * body};
  j[9] = {0, 95 * body, 585 * body};
  j[10] = {0, 20 * body, 690 * body};
  for (int side = 0; side < 2; ++side) {  // 0: left (11-13), 1: right (14-16)
    const double sx = side == 0 ? 1.0 : -1.0;
    const double sign = side == 0 ? 1.0 : -1.0;
    double flex = sign * swing * 0.8 * std::sin(phase) + seq.uniform(-0.3, 0.9) + jitter(0.1);
    double abduct = seq.uniform(0.1, 0.9) + jitter(0.08);
    double elbow = seq.uniform(0.1, 1.6) + jitter(0.1);
    const int base = side == 0 ? 11 : 14;
    j[base] = {sx * 165 * body, 0, 440 * body};
    j[base + 1] = add(j[base], scale(limb(sx, flex, abduct), upper));
    j[base + 2] = add(j[base + 1], scale(limb(sx, flex + elbow, abduct * 0.7), fore));
  }
  // Upper body lean (about x) and twist (about z).
  const double lean = (sitting ? 0.15 : 0.05) + 0.1 * std::sin(phase * 0.5) + jitter(0.03);
  const double twist = 0.15 * std::sin(phase * 0.7) + jitter(0.03);
  for (int k = 7; k < 17; ++k) {
    Vec3 p = j[k];
    Vec3 q{p[0], p[1] * std::cos(lean) + p[2] * std::sin(lean),
           -p[1] * std::sin(lean) + p[2] * std::cos(lean)};
    j[k] = {q[0] * std::cos(twist) - q[1] * std::sin(twist),
            q[0] * std::sin(twist) + q[1] * std::cos(twist), q[2]};
  }
  // Place in the world: heading, position on the floor, pelvis height.
  const double heading = seq.uniform(0, 2 * kPi) + (walking ? frame * 0.01 : 0.0) + jitter(0.02);
  const Vec3 pelvis{seq.uniform(-350, 350) + 2.0 * jitter(10),
                    seq.uniform(-350, 350) + 2.0 * jitter(10),
                    (sitting ? 480 : 930 * body) + jitter(8)};
  for (auto& p : j) {
    p = add(pelvis, {p[0] * std::cos(heading) - p[1] * std::sin(heading),
                     p[0] * std::sin(heading) + p[1] * std::cos(heading), p[2]});
  }
  return j;
}

cv::Mat make_background(uint64_t seed, int subject, int cam, int size) {
  Rng rng(seed_of(seed, 5, subject, cam));
  const int small = std::max(8, size / 16);
  cv::Mat low(small, small, CV_32FC3);
  for (int y = 0; y < small; ++y) {
    for (int x = 0; x < small; ++x) {
      low.at<cv::Vec3f>(y, x) = cv::Vec3f(static_cast<float>(rng.uniform(40, 200)),
                                          static_cast<float>(rng.uniform(40, 200)),
                                          static_cast<float>(rng.uniform(40, 200)));
    }
  }
  cv::Mat smooth;
  cv::resize(low, smooth, cv::Size(size, size), 0, 0, cv::INTER_CUBIC);
  cv::Mat image;
  smooth.convertTo(image, CV_8UC3);
  // A floor grid and some furniture-like boxes give the crops edges to resample.
  const int step = std::max(4, size / 20);
  for (int p = 0; p < size; p += step) {
    cv::line(image, {p, size / 2}, {p + (p - size / 2) / 2, size - 1}, cv::Scalar(90, 90, 90), 1);
    cv::line(image, {0, p}, {size - 1, p}, cv::Scalar(60, 70, 80), 1);
  }
  for (int r = 0; r < 6; ++r) {
    cv::Point a(static_cast<int>(rng.uniform(0, size)), static_cast<int>(rng.uniform(0, size)));
    cv::Point b = a + cv::Point(static_cast<int>(rng.uniform(size / 20.0, size / 4.0)),
                                static_cast<int>(rng.uniform(size / 20.0, size / 4.0)));
    cv::rectangle(image, a, b,
                  cv::Scalar(rng.uniform(0, 255), rng.uniform(0, 255), rng.uniform(0, 255)), -1);
  }
  return image;
}

// Bones drawn as (parent, child, is_left); left and right differ in colour so a
// flipped crop is distinguishable.
constexpr int kBones[16][3] = {{0, 1, 0},   {1, 2, 0},  {2, 3, 0},   {0, 4, 1},
                               {4, 5, 1},   {5, 6, 1},  {0, 7, 2},   {7, 8, 2},
                               {8, 9, 2},   {9, 10, 2}, {8, 11, 1},  {11, 12, 1},
                               {12, 13, 1}, {8, 14, 0}, {14, 15, 0}, {15, 16, 0}};

void render_person(cv::Mat& image, const Camera& cam, const std::array<Vec3, 17>& world) {
  std::array<cv::Point2d, 17> px;
  std::array<double, 17> depth{};
  for (int k = 0; k < 17; ++k) {
    auto p = cam.project(world[k]);
    px[k] = {p[0], p[1]};
    depth[k] = cam.to_camera(world[k])[2];
  }
  const double limb_px = cam.f[0] * 70.0 / depth[0];
  const cv::Scalar colours[3] = {{40, 40, 220}, {220, 80, 40}, {60, 200, 60}};  // R, L, centre
  constexpr int kShift = 4;                                                     // sub-pixel drawing
  auto fixed = [&](const cv::Point2d& p) {
    return cv::Point(static_cast<int>(std::lround(p.x * (1 << kShift))),
                     static_cast<int>(std::lround(p.y * (1 << kShift))));
  };
  for (const auto& bone : kBones) {
    cv::line(image, fixed(px[bone[0]]), fixed(px[bone[1]]), colours[bone[2]],
             std::max(1, static_cast<int>(limb_px)), cv::LINE_AA, kShift);
  }
  for (int k = 0; k < 17; ++k) {
    cv::circle(image, fixed(px[k]), std::max(1, static_cast<int>(limb_px * 0.6)) << kShift,
               cv::Scalar(230, 230, 230), -1, cv::LINE_AA, kShift);
  }
  cv::circle(image, fixed(px[10]), std::max(2, static_cast<int>(limb_px * 1.5)) << kShift,
             cv::Scalar(150, 190, 230), -1, cv::LINE_AA, kShift);
}

// Tight box around the projected joints plus a margin for the body's volume.
std::array<double, 4> annotation_box(const Camera& cam, const std::array<Vec3, 17>& world) {
  double x0 = 1e18, y0 = 1e18, x1 = -1e18, y1 = -1e18;
  for (const auto& p : world) {
    auto q = cam.project(p);
    x0 = std::min(x0, q[0]);
    y0 = std::min(y0, q[1]);
    x1 = std::max(x1, q[0]);
    y1 = std::max(y1, q[1]);
  }
  const double margin = 0.08 * std::max(x1 - x0, y1 - y0);
  return {x0 - margin, y0 - 1.5 * margin, x1 - x0 + 2 * margin, y1 - y0 + 2.5 * margin};
}

json to_json_rows(const std::array<Vec3, 17>& joints) {
  json rows = json::array();
  for (const auto& p : joints) rows.push_back({p[0], p[1], p[2]});
  return rows;
}

void run_parallel(int count, int threads, const std::function<void(int)>& body) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  threads = std::max(1, std::min(threads, count));
  std::atomic<int> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (int i = next++; i < count; i = next++) {
        try {
          body(i);
        } catch (...) {
          std::lock_guard<std::mutex> lock(error_mutex);
          if (!error) error = std::current_exception();
          next = count;
        }
      }
    });
  }
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace

std::vector<int> synth_frame_indices(const SynthOptions& options) {
  std::vector<int> frames;
  if (options.frames > 0) {
    for (int f = 0; f < options.frames; ++f) frames.push_back(f);
    return frames;
  }
  if (options.kept_frames < 1 || options.dropped_per_kept < 0 || options.dropped_per_kept > 63) {
    throw Error("synth: --kept-frames must be >= 1 and --dropped-per-kept in 0..63");
  }
  for (int k = 0; k < options.kept_frames; ++k) {
    for (int j = 0; j <= options.dropped_per_kept; ++j) frames.push_back(64 * k + j);
  }
  return frames;
}

SynthSummary write_synthetic_h36m(const SynthOptions& options) {
  if (options.out_dir.empty()) throw Error("synth: output directory not given");
  if (options.image_size < 64 || options.image_size > 8000) {
    throw Error("synth: --image-size " + std::to_string(options.image_size) + " outside 64..8000");
  }
  const std::vector<int> frames = synth_frame_indices(options);
  const std::filesystem::path out(options.out_dir);
  const int size = options.image_size;

  struct ImageJob {
    int subject, action, subaction, camera, frame;
    int64_t id;
  };
  std::vector<ImageJob> jobs;
  SynthSummary summary;
  json boxes_p1 = json::array(), boxes_p2 = json::array();
  int64_t next_id = 1;

  for (int subject : kSubjects) {
    json cameras = json::object();
    std::array<Camera, 4> cams;
    for (int c = 1; c <= 4; ++c) {
      cams[c - 1] = make_camera(options.seed, subject, c, size);
      const Camera& cam = cams[c - 1];
      cameras[std::to_string(c)] = {{"R",
                                     {{cam.R[0], cam.R[1], cam.R[2]},
                                      {cam.R[3], cam.R[4], cam.R[5]},
                                      {cam.R[6], cam.R[7], cam.R[8]}}},
                                    {"t", {cam.t[0], cam.t[1], cam.t[2]}},
                                    {"f", {cam.f[0], cam.f[1]}},
                                    {"c", {cam.c[0], cam.c[1]}}};
    }
    json images = json::array(), annotations = json::array(), joints = json::object();
    for (int action = 2; action <= 16; ++action) {
      for (int subaction = 1; subaction <= 2; ++subaction) {
        json& per_frame = joints[std::to_string(action)][std::to_string(subaction)];
        std::vector<std::array<Vec3, 17>> poses;
        for (int frame : frames) {
          poses.push_back(make_pose(options.seed, subject, action, subaction, frame));
          per_frame[std::to_string(frame)] = to_json_rows(poses.back());
        }
        for (int camera = 1; camera <= 4; ++camera) {
          const Camera& cam = cams[camera - 1];
          for (size_t fi = 0; fi < frames.size(); ++fi) {
            const int frame = frames[fi];
            const int64_t id = next_id++;
            images.push_back(
                {{"id", id},
                 {"file_name", image_file_name(subject, action, subaction, camera, frame)},
                 {"width", size},
                 {"height", size},
                 {"subject", subject},
                 {"action_name", action_names()[action - 2]},
                 {"action_idx", action},
                 {"subaction_idx", subaction},
                 {"cam_idx", camera},
                 {"frame_idx", frame}});
            const auto box = annotation_box(cam, poses[fi]);
            annotations.push_back({{"id", id},
                                   {"image_id", id},
                                   {"bbox", {box[0], box[1], box[2], box[3]}},
                                   {"keypoints_vis", std::vector<bool>(17, true)}});
            jobs.push_back({subject, action, subaction, camera, frame, id});
            if (frame % 64 != 0) continue;
            // RootNet-like output: the processed GT box and GT root, perturbed.
            std::array<double, 4> processed{};
            if (!process_gt_bbox(box, size, size, processed)) continue;
            Rng rng(seed_of(options.seed, 6, id));
            const double side = processed[2] * rng.uniform(0.95, 1.05);
            const double cx = processed[0] + processed[2] / 2 + rng.normal(0.02 * processed[2]);
            const double cy = processed[1] + processed[3] / 2 + rng.normal(0.02 * processed[3]);
            Vec3 root = cam.to_camera(poses[fi][0]);
            root = add(root, {rng.normal(30), rng.normal(30), rng.normal(80)});
            json entry = {{"image_id", id},
                          {"bbox", {cx - side / 2, cy - side / 2, side, side}},
                          {"root_cam", {root[0], root[1], root[2]}}};
            boxes_p2.push_back(entry);
            ++summary.protocol2_samples;
            if (subject == 11) {
              boxes_p1.push_back(entry);
              ++summary.protocol1_samples;
            }
          }
        }
      }
    }
    json data = {{"images", std::move(images)},
                 {"annotations", std::move(annotations)},
                 {"categories", json::array({{{"id", 1}, {"name", "person"}}})}};
    const std::string root = out.string();
    for (auto& [kind, doc] : std::vector<std::pair<std::string, json*>>{
             {"data", &data}, {"camera", &cameras}, {"joint_3d", &joints}}) {
      const std::string path = annotation_path(root, subject, kind);
      write_file_atomic(path, doc->dump());
      summary.files.push_back(path);
    }
  }
  for (auto& [name, doc] : std::vector<std::pair<std::string, json*>>{
           {"protocol1.json", &boxes_p1}, {"protocol2.json", &boxes_p2}}) {
    const std::string path = (out / "bbox_root" / name).string();
    write_file_atomic(path, doc->dump());
    summary.files.push_back(path);
  }
  summary.images = static_cast<int>(jobs.size());
  if (!options.write_images) return summary;

  // Backgrounds once per (subject, camera); images in parallel (render + JPEG encode).
  std::map<std::pair<int, int>, cv::Mat> backgrounds;
  for (int subject : kSubjects) {
    for (int c = 1; c <= 4; ++c)
      backgrounds[{subject, c}] = make_background(options.seed, subject, c, size);
  }
  std::set<std::string> folders;
  for (const auto& job : jobs) {
    const std::string name = image_file_name(job.subject, job.action, job.subaction, job.camera, 0);
    folders.insert(name.substr(0, name.find('/')));
  }
  for (const auto& folder : folders) std::filesystem::create_directories(out / "images" / folder);
  run_parallel(static_cast<int>(jobs.size()), options.threads, [&](int i) {
    const ImageJob& job = jobs[i];
    const Camera cam = make_camera(options.seed, job.subject, job.camera, size);
    cv::Mat image = backgrounds.at({job.subject, job.camera}).clone();
    render_person(image, cam,
                  make_pose(options.seed, job.subject, job.action, job.subaction, job.frame));
    if (!image.isContinuous()) image = image.clone();
    write_file_atomic(
        (out / "images" /
         image_file_name(job.subject, job.action, job.subaction, job.camera, job.frame))
            .string(),
        encode_jpeg_bgr(image.data, image.cols, image.rows, options.jpeg_quality));
  });
  return summary;
}

}  // namespace cnp::data
