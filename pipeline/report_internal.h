#pragma once
// Internal to pipeline/report*: the comparison as one JSON document, from which the
// Markdown, the HTML page and the pictures are all drawn.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "pipeline/report.h"

namespace cnp::pipeline {

struct Comparison {
  nlohmann::ordered_json json;
  std::vector<std::string> summary;  // one sentence per line
};
Comparison build_comparison(const std::vector<JobResult>& results,
                            const model::VariantRegistry& registry);

std::string markdown_from_comparison(const Comparison& c);
// A self-contained page: the tables, and <img> tags for `pictures` (file names beside it).
std::string html_from_comparison(const Comparison& c, const std::vector<std::string>& pictures);

// "12.35"; "+1.20"; "-" for null.
std::string fmt(double v);
std::string fmt_signed(double v);
std::string fmt_cell(const nlohmann::ordered_json& v);
// "[a, b]" from a two-element array, "-" for null.
std::string fmt_interval(const nlohmann::ordered_json& v);

}  // namespace cnp::pipeline
