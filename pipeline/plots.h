#pragma once
// Pictures of a comparison (drawn with Cairo, written as SVG and PNG beside
// comparison.md): headline error against epoch, per-action and per-joint bars.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace cnp::pipeline {

constexpr int kPlotWidth = 1200;       // pixels (PNG) / points (SVG)
constexpr int kPlotPanelHeight = 420;  // one panel per protocol, stacked

// Writes <dir>/{epochs,actions,joints}.{svg,png} from comparison.json's content
// (atomically, each file) and returns the file names written, SVG first per picture.
// A picture with nothing to show (no jobs of any protocol) is not written.
std::vector<std::string> write_pictures(const nlohmann::ordered_json& comparison,
                                        const std::string& dir);

// False in a build without Cairo (a GPU node's dependency bundle has none): write_pictures then
// writes nothing, and the reports say so; `cnp compare` where Cairo exists draws them.
bool pictures_available();

}  // namespace cnp::pipeline
