// Cairo draws each picture once per surface (SVG and image), so both files show the
// same thing. Layout: panels stacked vertically, one per protocol; legend on the right.
#include "pipeline/plots.h"

#include <cairo-svg.h>
#include <cairo.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <iomanip>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include "common/error.h"
#include "common/files.h"
#include "data/h36m.h"

namespace cnp::pipeline {
namespace {

using ojson = nlohmann::ordered_json;
namespace fs = std::filesystem;

struct Color {
  double r, g, b;
};
// Colour-blind-safe palette (Okabe-Ito), one colour per variant.
const Color kPalette[] = {{0.00, 0.45, 0.70}, {0.90, 0.62, 0.00}, {0.00, 0.62, 0.45},
                          {0.80, 0.40, 0.00}, {0.35, 0.70, 0.90}, {0.80, 0.60, 0.70},
                          {0.94, 0.89, 0.26}, {0.30, 0.30, 0.30}};
Color color_of(size_t i) {
  return kPalette[i % (sizeof(kPalette) / sizeof(kPalette[0]))];
}

constexpr double kLeft = 80, kRight = 190, kTop = 44, kBottomLines = 60, kBottomBars = 110;

struct Box {
  double x, y, w, h;
};

// Axis range rounded out to a "nice" tick step (1, 2 or 5 times a power of ten).
struct Axis {
  double lo, hi, step;
};
Axis nice_axis(double lo, double hi, bool from_zero) {
  if (from_zero) lo = std::min(0.0, lo);
  if (!(hi > lo)) hi = lo + 1;
  const double raw = (hi - lo) / 6;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * mag;
    if (raw <= step) break;
  }
  return {std::floor(lo / step) * step, std::ceil(hi / step) * step, step};
}

std::string tick_label(double v, double step) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(step >= 1 ? 0 : step >= 0.1 ? 1 : 2) << v;
  return s.str();
}

void set_color(cairo_t* cr, const Color& c, double alpha = 1.0) {
  cairo_set_source_rgba(cr, c.r, c.g, c.b, alpha);
}

void text(cairo_t* cr, double x, double y, const std::string& s, double size, double align_x,
          double angle = 0, bool bold = false) {
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL,
                         bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
  cairo_text_extents_t ext;
  cairo_text_extents(cr, s.c_str(), &ext);
  cairo_save(cr);
  cairo_translate(cr, x, y);
  cairo_rotate(cr, angle);
  cairo_move_to(cr, -align_x * ext.x_advance, ext.height / 2);
  cairo_show_text(cr, s.c_str());
  cairo_restore(cr);
  cairo_new_path(cr);  // show_text leaves a current point; the next path must not join it
}

// Frame, y grid and y ticks of one panel; returns the value -> pixel mapping.
std::function<double(double)> draw_y_axis(cairo_t* cr, const Box& b, const Axis& a,
                                          const std::string& label) {
  auto to_y = [b, a](double v) { return b.y + b.h - (v - a.lo) / (a.hi - a.lo) * b.h; };
  cairo_set_line_width(cr, 1);
  for (double v = a.lo; v <= a.hi + a.step / 2; v += a.step) {
    cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
    cairo_move_to(cr, b.x, to_y(v));
    cairo_line_to(cr, b.x + b.w, to_y(v));
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    text(cr, b.x - 6, to_y(v), tick_label(v, a.step), 11, 1.0);
  }
  cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
  cairo_rectangle(cr, b.x, b.y, b.w, b.h);
  cairo_stroke(cr);
  text(cr, b.x - 58, b.y + b.h / 2, label, 12, 0.5, -M_PI / 2);
  return to_y;
}

struct Panel {
  std::string title;
  std::function<void(cairo_t*, const Box&)> draw;
};

// Renders stacked panels onto one surface.
void render(cairo_t* cr, const std::vector<Panel>& panels, double bottom) {
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  for (size_t i = 0; i < panels.size(); ++i) {
    const double top = static_cast<double>(i) * kPlotPanelHeight;
    const Box plot{kLeft, top + kTop, kPlotWidth - kLeft - kRight,
                   kPlotPanelHeight - kTop - bottom};
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    text(cr, kLeft, top + 18, panels[i].title, 15, 0.0, 0, true);
    panels[i].draw(cr, plot);
  }
}

void write_atomic_surface(const std::string& path,
                          const std::function<void(const std::string&)>& w) {
  const std::string tmp = temporary_name(path);
  try {
    w(tmp);
    fs::rename(tmp, path);
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
}

// <dir>/<name>.svg and .png of the panels.
void write_figure(const std::string& dir, const std::string& name, const std::vector<Panel>& panels,
                  double bottom, std::vector<std::string>& written) {
  const int height = static_cast<int>(panels.size()) * kPlotPanelHeight;
  const std::string svg = (fs::path(dir) / (name + ".svg")).string();
  const std::string png = (fs::path(dir) / (name + ".png")).string();
  write_atomic_surface(svg, [&](const std::string& tmp) {
    cairo_surface_t* s = cairo_svg_surface_create(tmp.c_str(), kPlotWidth, height);
    cairo_t* cr = cairo_create(s);
    render(cr, panels, bottom);
    cairo_destroy(cr);
    cairo_surface_finish(s);
    const cairo_status_t status = cairo_surface_status(s);
    cairo_surface_destroy(s);
    if (status != CAIRO_STATUS_SUCCESS)
      throw Error(svg + ": cannot write SVG: " + cairo_status_to_string(status));
  });
  write_atomic_surface(png, [&](const std::string& tmp) {
    cairo_surface_t* s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, kPlotWidth, height);
    cairo_t* cr = cairo_create(s);
    render(cr, panels, bottom);
    cairo_destroy(cr);
    const cairo_status_t status = cairo_surface_write_to_png(s, tmp.c_str());
    cairo_surface_destroy(s);
    if (status != CAIRO_STATUS_SUCCESS)
      throw Error(png + ": cannot write PNG: " + cairo_status_to_string(status));
  });
  written.push_back(name + ".svg");
  written.push_back(name + ".png");
}

std::vector<int> protocols_of(const ojson& jobs) {
  std::vector<int> out;
  for (const auto& j : jobs) {
    const int p = j["protocol"].get<int>();
    if (std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
  }
  std::sort(out.begin(), out.end());
  return out;
}

const char* headline_label(int protocol) {
  return protocol == 1 ? "PA-MPJPE (mm)" : "MPJPE (mm)";
}

// Variant -> colour index, in order of first appearance, shared by every picture.
std::map<std::string, size_t> variant_colors(const ojson& jobs) {
  std::map<std::string, size_t> out;
  for (const auto& j : jobs) {
    const std::string v = j["variant"].get<std::string>();
    if (!out.count(v)) out.emplace(v, out.size());
  }
  return out;
}

void legend_entry(cairo_t* cr, double x, double y, const Color& c, bool dashed, bool bar,
                  const std::string& label) {
  set_color(cr, c);
  if (bar) {
    cairo_rectangle(cr, x, y - 6, 22, 12);
    cairo_fill(cr);
  } else {
    cairo_set_line_width(cr, 2.5);
    if (dashed) {
      const double dash[] = {6, 4};
      cairo_set_dash(cr, dash, 2, 0);
    }
    cairo_move_to(cr, x, y);
    cairo_line_to(cr, x + 22, y);
    cairo_stroke(cr);
    cairo_set_dash(cr, nullptr, 0, 0);
  }
  cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
  text(cr, x + 30, y, label, 12, 0.0);
}

// Error against epoch: one line per (variant, flip, boxes, sweep), 95% band shaded.
std::vector<Panel> epoch_panels(const ojson& c) {
  const auto colors = variant_colors(c["jobs"]);
  std::vector<Panel> panels;
  for (int protocol : protocols_of(c["jobs"])) {
    struct Point {
      double epoch, value, lo, hi;
      bool has_ci;
    };
    struct Series {
      std::string variant;
      bool flip;
      std::string label;
      std::vector<Point> points;
    };
    std::map<std::string, Series> series;
    std::set<std::string> sources;
    for (const auto& j : c["jobs"]) sources.insert(j.value("source", ""));
    const bool several_sources = sources.size() > 1;
    double lo = std::numeric_limits<double>::max(), hi = -lo;
    double e_lo = lo, e_hi = -lo;
    for (const auto& j : c["jobs"]) {
      if (j["protocol"].get<int>() != protocol) continue;
      const bool flip = j["flip"].get<bool>();
      const std::string bbox = j["bbox"].get<std::string>();
      const std::string source =
          several_sources && j.contains("source") ? j["source"].get<std::string>() : "";
      std::string label = j["variant"].get<std::string>() + (flip ? " flip" : " no flip");
      if (bbox != "gt") label += " (" + bbox + " boxes)";
      if (!source.empty()) label += " " + fs::path(source).filename().string();
      Series& s = series[label];
      s.variant = j["variant"].get<std::string>();
      s.flip = flip;
      s.label = label;
      Point p{static_cast<double>(j["epoch"].get<int>()), j["value"].get<double>(), 0, 0, false};
      if (j["value_ci95"].is_array()) {
        p.lo = j["value_ci95"][0].get<double>();
        p.hi = j["value_ci95"][1].get<double>();
        p.has_ci = true;
      }
      lo = std::min({lo, p.value, p.has_ci ? p.lo : p.value});
      hi = std::max({hi, p.value, p.has_ci ? p.hi : p.value});
      e_lo = std::min(e_lo, p.epoch);
      e_hi = std::max(e_hi, p.epoch);
      s.points.push_back(p);
    }
    for (auto& [label, s] : series) {
      std::sort(s.points.begin(), s.points.end(),
                [](const Point& a, const Point& b) { return a.epoch < b.epoch; });
    }
    const double pad = std::max(0.5, (hi - lo) * 0.1);
    const Axis y = nice_axis(lo - pad, hi + pad, false);
    // Epochs are integers: ticks at integer steps, half an epoch of margin each side.
    const double x0 = e_lo - 0.5, x1 = e_hi + 0.5;
    const double x_step = std::max(1.0, std::ceil((x1 - x0) / 10));
    panels.push_back({std::string("Protocol ") + std::to_string(protocol) +
                          ": headline error against epoch "
                          "(band: 95% CI)",
                      [=](cairo_t* cr, const Box& b) {
                        const auto to_y = draw_y_axis(cr, b, y, headline_label(protocol));
                        auto to_x = [&](double e) { return b.x + (e - x0) / (x1 - x0) * b.w; };
                        cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
                        for (double e = std::ceil(e_lo); e <= e_hi; e += x_step)
                          text(cr, to_x(e), b.y + b.h + 14, std::to_string(static_cast<int>(e)), 11,
                               0.5);
                        text(cr, b.x + b.w / 2, b.y + b.h + 36, "epoch", 12, 0.5);
                        double ly = b.y + 8;
                        for (const auto& [label, s] : series) {
                          const Color col = color_of(colors.at(s.variant));
                          // Band (or an error bar where a single epoch leaves no band to draw).
                          if (s.points.size() > 1 && s.points.front().has_ci) {
                            set_color(cr, col, 0.18);
                            for (size_t i = 0; i < s.points.size(); ++i)
                              cairo_line_to(cr, to_x(s.points[i].epoch), to_y(s.points[i].hi));
                            for (size_t i = s.points.size(); i-- > 0;)
                              cairo_line_to(cr, to_x(s.points[i].epoch), to_y(s.points[i].lo));
                            cairo_close_path(cr);
                            cairo_fill(cr);
                          }
                          set_color(cr, col);
                          cairo_set_line_width(cr, 2.5);
                          if (!s.flip) {
                            const double dash[] = {6, 4};
                            cairo_set_dash(cr, dash, 2, 0);
                          }
                          for (const auto& p : s.points)
                            cairo_line_to(cr, to_x(p.epoch), to_y(p.value));
                          cairo_stroke(cr);
                          cairo_set_dash(cr, nullptr, 0, 0);
                          for (const auto& p : s.points) {
                            if (p.has_ci && s.points.size() == 1) {
                              cairo_set_line_width(cr, 1.5);
                              cairo_move_to(cr, to_x(p.epoch), to_y(p.lo));
                              cairo_line_to(cr, to_x(p.epoch), to_y(p.hi));
                              cairo_stroke(cr);
                            }
                            cairo_new_path(cr);
                            cairo_arc(cr, to_x(p.epoch), to_y(p.value), 3.5, 0, 2 * M_PI);
                            cairo_fill(cr);
                          }
                          legend_entry(cr, b.x + b.w + 14, ly, col, !s.flip, false, label);
                          ly += 20;
                        }
                      }});
  }
  return panels;
}

// Grouped bars: one group per category (action or joint), one bar per variant's best job.
std::vector<Panel> bar_panels(const ojson& c, const char* table, const std::string& what,
                              const std::vector<std::string>& categories) {
  const auto colors = variant_colors(c["jobs"]);
  std::vector<Panel> panels;
  for (int protocol : protocols_of(c["jobs"])) {
    std::vector<const ojson*> variants;
    double hi = 0;
    for (const auto& v : c["variants"]) {
      if (v["protocol"].get<int>() != protocol || v[table].empty()) continue;
      variants.push_back(&v);
      for (const auto& [name, value] : v[table].items()) hi = std::max(hi, value.get<double>());
    }
    if (variants.empty()) continue;
    // Only categories some variant has (a sweep over a few actions shows no empty slots).
    std::vector<std::string> shown;
    for (const auto& name : categories) {
      for (const ojson* v : variants) {
        if ((*v)[table].contains(name)) {
          shown.push_back(name);
          break;
        }
      }
    }
    const Axis y = nice_axis(0, hi * 1.05, true);
    panels.push_back(
        {"Protocol " + std::to_string(protocol) + ": " + what + ", best job of each variant",
         [=](cairo_t* cr, const Box& b) {
           const auto to_y = draw_y_axis(cr, b, y, headline_label(protocol));
           // Groups at most 120 px wide: a single action is not one wall-to-wall bar.
           const double group = std::min(120.0, b.w / static_cast<double>(shown.size()));
           const double bar = group * 0.8 / static_cast<double>(variants.size());
           for (size_t k = 0; k < shown.size(); ++k) {
             const double gx = b.x + group * static_cast<double>(k) + group * 0.1;
             for (size_t i = 0; i < variants.size(); ++i) {
               const ojson& values = (*variants[i])[table];
               if (!values.contains(shown[k])) continue;
               const double v = values[shown[k]].get<double>();
               set_color(cr, color_of(colors.at((*variants[i])["variant"].get<std::string>())));
               cairo_rectangle(cr, gx + bar * static_cast<double>(i), to_y(v), bar * 0.92,
                               to_y(y.lo) - to_y(v));
               cairo_fill(cr);
             }
             cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
             // Labels slanted so long action names never overlap their neighbours.
             text(cr, b.x + group * (static_cast<double>(k) + 0.5), b.y + b.h + 10, shown[k], 11,
                  1.0, -M_PI / 4);
           }
           double ly = b.y + 8;
           for (const ojson* v : variants) {
             const std::string label = (*v)["best_job"].get<std::string>();
             legend_entry(cr, b.x + b.w + 14, ly,
                          color_of(colors.at((*v)["variant"].get<std::string>())), false, true,
                          label);
             ly += 20;
           }
         }});
  }
  return panels;
}

}  // namespace

bool pictures_available() {
  return true;
}

std::vector<std::string> write_pictures(const ojson& comparison, const std::string& dir) {
  fs::create_directories(dir);
  std::vector<std::string> written;
  const auto epochs = epoch_panels(comparison);
  if (!epochs.empty()) write_figure(dir, "epochs", epochs, kBottomLines, written);
  std::vector<std::string> actions(data::action_names().begin(), data::action_names().end());
  const auto action_bars = bar_panels(comparison, "per_action", "per-action error", actions);
  if (!action_bars.empty()) write_figure(dir, "actions", action_bars, kBottomBars, written);
  std::vector<std::string> joints(data::joint_names().begin(),
                                  data::joint_names().begin() + (data::kNumJoints - 1));
  const auto joint_bars = bar_panels(comparison, "per_joint", "per-joint error", joints);
  if (!joint_bars.empty()) write_figure(dir, "joints", joint_bars, kBottomBars, written);
  return written;
}

}  // namespace cnp::pipeline
