// Attention-map heatmaps and contact sheets (see apps/attention_png.hpp).
#include "apps/attention_png.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "core/error.hpp"

namespace xmodal::app {

namespace {

// Image (RGB) -> cv::Mat (BGR), copied.
cv::Mat to_bgr(const Image& im) {
  cv::Mat rgb(im.height, im.width, CV_8UC3, const_cast<uint8_t*>(im.pixels.data()));
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  return bgr;
}

Image from_bgr(const cv::Mat& bgr) {
  Image out(bgr.cols, bgr.rows);
  cv::Mat rgb(out.height, out.width, CV_8UC3, out.pixels.data());
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return out;
}

// image -> BGR at most max_side, map blended as JET.
cv::Mat overlay_bgr(const Image& image, const std::vector<float>& map, int64_t grid, int max_side) {
  if (grid <= 0 || map.size() != static_cast<size_t>(grid * grid))
    throw InternalError("attention map has " + std::to_string(map.size()) + " values, expected " +
                        std::to_string(grid * grid));
  cv::Mat bgr = to_bgr(image);
  const double s = std::min(1.0, static_cast<double>(max_side) / std::max(image.width, image.height));
  if (s < 1.0) {
    cv::Mat small;
    cv::resize(bgr, small, cv::Size(std::max(1, static_cast<int>(std::lround(image.width * s))),
                                    std::max(1, static_cast<int>(std::lround(image.height * s)))),
               0, 0, cv::INTER_AREA);
    bgr = small;
  }
  const float mx = std::max(1e-12f, *std::max_element(map.begin(), map.end()));
  cv::Mat m(static_cast<int>(grid), static_cast<int>(grid), CV_32F);
  for (int64_t i = 0; i < grid * grid; ++i) m.at<float>(static_cast<int>(i / grid), static_cast<int>(i % grid)) = std::max(0.0f, map[static_cast<size_t>(i)]) / mx;
  cv::Mat up;
  cv::resize(m, up, bgr.size(), 0, 0, cv::INTER_LINEAR);
  cv::Mat u8;
  up.convertTo(u8, CV_8U, 255.0);
  cv::Mat heat;
  cv::applyColorMap(u8, heat, cv::COLORMAP_JET);
  cv::Mat out;
  cv::addWeighted(bgr, 0.5, heat, 0.5, 0.0, out);
  return out;
}

void write_png(const cv::Mat& bgr, const std::string& path) {
  bool ok = false;
  try {
    ok = cv::imwrite(path, bgr);
  } catch (const cv::Exception& e) {
    throw InputError(path, std::string("cannot write the PNG: ") + e.what());
  }
  if (!ok) throw InputError(path, "cannot write the PNG (is the folder writable?)");
}

// A panel: the picture scaled to `w` wide, with `label` centred in a white strip below it.
cv::Mat panel(const cv::Mat& pic, int w, const std::string& label) {
  const int h = std::max(1, static_cast<int>(std::lround(pic.rows * static_cast<double>(w) / pic.cols)));
  cv::Mat scaled;
  cv::resize(pic, scaled, cv::Size(w, h), 0, 0, cv::INTER_AREA);
  const int strip = 28;
  cv::Mat p(h + strip, w, CV_8UC3, cv::Scalar(255, 255, 255));
  scaled.copyTo(p(cv::Rect(0, 0, w, h)));
  double scale = 0.55;
  int base = 0;
  cv::Size ts = cv::getTextSize(label, cv::FONT_HERSHEY_SIMPLEX, scale, 1, &base);
  while (ts.width > w - 4 && scale > 0.25) {
    scale -= 0.05;
    ts = cv::getTextSize(label, cv::FONT_HERSHEY_SIMPLEX, scale, 1, &base);
  }
  cv::putText(p, label, cv::Point(std::max(2, (w - ts.width) / 2), h + (strip + ts.height) / 2), cv::FONT_HERSHEY_SIMPLEX,
              scale, cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
  return p;
}

// Printable ASCII for OpenCV's Hershey font (which has no other glyphs).
std::string printable(const std::string& t) {
  std::string s;
  for (unsigned char c : t) {
    if (c >= 0x20 && c < 0x7f) s += static_cast<char>(c);
    else if (c >= 0x80 && (c & 0xC0) != 0x80) s += '?';
  }
  // sentencepiece's word-start marker U+2581 becomes '?' above; drop a leading one.
  if (!s.empty() && s[0] == '?' && t.rfind("\xE2\x96\x81", 0) == 0) s.erase(0, 1);
  return s.empty() ? "?" : s;
}

}  // namespace

std::string file_word(const std::string& token) {
  std::string s;
  for (unsigned char c : token)
    if (c < 0x80 && std::isalnum(c)) s += static_cast<char>(c);
  return s.empty() ? "tok" : s.substr(0, 24);
}

Image heatmap_overlay(const Image& image, const std::vector<float>& map, int64_t grid, int max_side) {
  return from_bgr(overlay_bgr(image, map, grid, max_side));
}

std::vector<std::string> write_attention_maps(const Image& image, const std::vector<std::vector<float>>& maps,
                                              int64_t grid, const std::vector<std::string>& words,
                                              const std::string& dir, const std::string& stem) {
  if (maps.size() != words.size())
    throw InternalError("attention maps: " + std::to_string(maps.size()) + " maps for " + std::to_string(words.size()) +
                        " words");
  std::vector<std::string> files;
  std::vector<cv::Mat> panels;
  const int pw = 160;
  panels.push_back(panel(to_bgr(image), pw, "(image)"));
  for (size_t k = 0; k < maps.size(); ++k) {
    const cv::Mat o = overlay_bgr(image, maps[k], grid, 384);
    char idx[24];
    std::snprintf(idx, sizeof idx, "%02zu", k);
    const std::string f = dir + "/" + stem + "." + idx + "." + file_word(words[k]) + ".png";
    write_png(o, f);
    files.push_back(f);
    panels.push_back(panel(o, pw, printable(words[k])));
  }
  // Contact sheet: up to 6 panels per row, rows padded with white.
  const int cols = static_cast<int>(std::min<size_t>(6, panels.size()));
  const int rows = static_cast<int>((panels.size() + static_cast<size_t>(cols) - 1) / static_cast<size_t>(cols));
  int ph = 0;
  for (const auto& p : panels) ph = std::max(ph, p.rows);
  const int gap = 4;
  cv::Mat sheet(rows * (ph + gap) + gap, cols * (pw + gap) + gap, CV_8UC3, cv::Scalar(255, 255, 255));
  for (size_t i = 0; i < panels.size(); ++i) {
    const int r = static_cast<int>(i) / cols, c = static_cast<int>(i) % cols;
    panels[i].copyTo(sheet(cv::Rect(gap + c * (pw + gap), gap + r * (ph + gap), panels[i].cols, panels[i].rows)));
  }
  const std::string sf = dir + "/" + stem + ".sheet.png";
  write_png(sheet, sf);
  files.push_back(sf);
  return files;
}

}  // namespace xmodal::app
