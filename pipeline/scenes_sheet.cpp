// Scenes: the contact sheet (a PNG grid of sample scenes of both presets, with a caption and
// a question + answer under each), used for docs/scenes.png.
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "pipeline/scenes.hpp"

namespace xmodal::scenes {
namespace {

constexpr int kCols = 4, kCellW = 272, kPicH = 256, kTextLines = 6, kLineH = 15, kPad = 8, kTitleH = 30;
constexpr int kFont = cv::FONT_HERSHEY_SIMPLEX;
constexpr double kScale = 0.4;

// Greedy word wrap to max_w pixels.
std::vector<std::string> wrap(const std::string& text, int max_w) {
  std::vector<std::string> lines;
  std::string cur, word;
  auto width = [](const std::string& s) {
    int base = 0;
    return cv::getTextSize(s, kFont, kScale, 1, &base).width;
  };
  auto flush_word = [&]() {
    if (word.empty()) return;
    std::string trial = cur.empty() ? word : cur + " " + word;
    if (!cur.empty() && width(trial) > max_w) {
      lines.push_back(cur);
      cur = word;
    } else {
      cur = trial;
    }
    word.clear();
  };
  for (char ch : text) {
    if (ch == ' ') flush_word();
    else word += ch;
  }
  flush_word();
  if (!cur.empty()) lines.push_back(cur);
  return lines;
}

cv::Mat to_bgr(const Scene& s) {
  const std::vector<uint8_t> rgb = render_rgb(s);
  cv::Mat m(s.height, s.width, CV_8UC3);
  for (int y = 0; y < s.height; ++y)
    for (int x = 0; x < s.width; ++x) {
      const uint8_t* p = &rgb[(static_cast<size_t>(y) * s.width + x) * 3];
      m.at<cv::Vec3b>(y, x) = cv::Vec3b(p[2], p[1], p[0]);
    }
  return m;
}

}  // namespace

void write_contact_sheet(const std::string& path, uint64_t seed, int per_preset) {
  const int rows_per = (per_preset + kCols - 1) / kCols;
  const int cell_h = kPicH + kPad + kTextLines * kLineH + kPad;
  const int W = kCols * kCellW + kPad;
  const int H = 2 * (kTitleH + rows_per * cell_h) + kPad;
  cv::Mat sheet(H, W, CV_8UC3, cv::Scalar(255, 255, 255));
  int y0 = 0;
  for (Preset p : {Preset::shapes, Preset::sort_of_clevr}) {
    const std::string title = std::string(preset_name(p)) + " (seed " + std::to_string(seed) + ", images 0-" +
                              std::to_string(per_preset - 1) + ")";
    cv::putText(sheet, title, {kPad, y0 + 21}, kFont, 0.6, cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
    y0 += kTitleH;
    for (int i = 0; i < per_preset; ++i) {
      const Scene s = generate_scene(p, seed, i);
      Rng cr(image_key(p, seed, i, 1)), qr(image_key(p, seed, i, 2));
      const auto caps = make_captions(s, cr);
      const auto qs = make_questions(s, qr);
      const int cx = kPad + (i % kCols) * kCellW, cy = y0 + (i / kCols) * cell_h;
      // Nearest-neighbour upscale (2x shapes, 3x sort-of-clevr) keeps the real pixels visible.
      const int f = p == Preset::shapes ? 2 : 3;
      cv::Mat big;
      cv::resize(to_bgr(s), big, {s.width * f, s.height * f}, 0, 0, cv::INTER_NEAREST);
      big.copyTo(sheet(cv::Rect(cx, cy, big.cols, big.rows)));
      cv::rectangle(sheet, cv::Rect(cx, cy, big.cols, big.rows), cv::Scalar(160, 160, 160), 1);
      // Vary which caption and question are shown so every template appears on the sheet.
      const std::string cap = caps[i % caps.size()];
      const Question& q = qs[(i * 7 + i / 2) % qs.size()];
      std::vector<std::string> lines = wrap(cap, kCellW - 2 * kPad);
      for (const auto& l : wrap("Q (" + q.family + "): " + q.question + "  A: " + q.answer, kCellW - 2 * kPad))
        lines.push_back(l);
      if (lines.size() > static_cast<size_t>(kTextLines)) lines.resize(kTextLines);
      for (size_t k = 0; k < lines.size(); ++k) {
        const bool is_q = k >= wrap(cap, kCellW - 2 * kPad).size();
        cv::putText(sheet, lines[k], {cx, cy + kPicH + kPad + 10 + static_cast<int>(k) * kLineH}, kFont, kScale,
                    is_q ? cv::Scalar(140, 60, 0) : cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
      }
    }
    y0 += rows_per * cell_h;
  }
  std::vector<uchar> buf;
  if (!cv::imencode(".png", sheet, buf, {cv::IMWRITE_PNG_COMPRESSION, 9}))
    throw InternalError("PNG encoding failed for the contact sheet");
  write_file_atomic(path, std::string(buf.begin(), buf.end()));
}

}  // namespace xmodal::scenes
