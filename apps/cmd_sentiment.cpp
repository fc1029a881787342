// xmodal sentiment: positive / neutral / negative from what is said (--text) and how it sounds
// (--audio), with the built-in text+audio model (or --model DIR), optionally drawing which audio
// frames each word attended to.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "apps/subcommand.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "encoders/audio.hpp"
#include "pipeline/sentiment.hpp"

namespace xmodal::app {
namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

struct Word {
  std::string text;
  std::vector<float> attn;  // [T'] mean over the word's pieces
};

// Pieces -> words: a piece that starts with U+2581 (sentencepiece's space) opens a word.
// attention [L, T'] -> one row per word.
std::vector<Word> words_of(const std::vector<std::string>& pieces, const Tensor& attention) {
  static const std::string kSpace = "\xE2\x96\x81";
  const int64_t Tm = attention.size(1);
  std::vector<Word> words;
  std::vector<int> count;
  for (size_t i = 0; i < pieces.size(); ++i) {
    std::string p = pieces[i];
    const bool opens = p.rfind(kSpace, 0) == 0;
    if (opens) p = p.substr(kSpace.size());
    if (opens || words.empty()) {  // a lone space piece opens a word the next pieces fill
      words.push_back({p, std::vector<float>(static_cast<size_t>(Tm), 0.f)});
      count.push_back(0);
    } else {
      words.back().text += p;
    }
    for (int64_t t = 0; t < Tm; ++t) words.back().attn[static_cast<size_t>(t)] += attention.f32()[static_cast<int64_t>(i) * Tm + t];
    ++count.back();
  }
  for (size_t w = 0; w < words.size(); ++w)
    for (float& v : words[w].attn) v /= static_cast<float>(std::max(1, count[w]));
  return words;
}

// Log-mel spectrogram on top (low frequencies at the bottom), then one row per word with its
// attention over time (each row scaled to its own maximum), on the same time axis.
void write_attention_map(const std::string& path, const Tensor& logmel, const std::vector<Word>& words,
                         const std::string& title) {
  const int T = static_cast<int>(logmel.size(0)), M = static_cast<int>(logmel.size(1));
  const int left = 130, right = 16, top = 34, spec_h = 2 * M, row_h = 22, gap = 8, axis_h = 62;
  const int plot_w = std::clamp(2 * T, 400, 1600);
  const int H = top + spec_h + gap + row_h * static_cast<int>(words.size()) + axis_h;
  const int W = left + plot_w + right;
  cv::Mat img(H, W, CV_8UC3, cv::Scalar(255, 255, 255));
  const cv::Scalar ink(30, 30, 30);
  const auto font = cv::FONT_HERSHEY_SIMPLEX;
  cv::putText(img, title, {8, 22}, font, 0.5, ink, 1, cv::LINE_AA);

  // Spectrogram: ln mel power, clipped to the top 80 dB-ish (18 nats) of the clip.
  float mx = -1e30f;
  for (int64_t i = 0; i < logmel.numel(); ++i) mx = std::max(mx, logmel.f32()[i]);
  cv::Mat spec(M, T, CV_8UC1);
  for (int m = 0; m < M; ++m)
    for (int t = 0; t < T; ++t) {
      const float v = (logmel.f32()[static_cast<int64_t>(t) * M + m] - (mx - 18.f)) / 18.f;
      spec.at<uint8_t>(M - 1 - m, t) = static_cast<uint8_t>(std::clamp(v, 0.f, 1.f) * 255.f);
    }
  cv::Mat spec_big, spec_col;
  cv::resize(spec, spec_big, {plot_w, spec_h}, 0, 0, cv::INTER_LINEAR);
  cv::applyColorMap(spec_big, spec_col, cv::COLORMAP_MAGMA);
  spec_col.copyTo(img(cv::Rect(left, top, plot_w, spec_h)));
  cv::putText(img, "log-mel", {8, top + spec_h / 2}, font, 0.45, ink, 1, cv::LINE_AA);

  // Word rows: attention frame j covers log-mel frames [4j, 4j+4).
  const int y0 = top + spec_h + gap;
  for (size_t w = 0; w < words.size(); ++w) {
    const auto& a = words[w].attn;
    const float amax = std::max(1e-12f, *std::max_element(a.begin(), a.end()));
    cv::Mat row(1, T, CV_8UC1);
    for (int t = 0; t < T; ++t) {
      const size_t j = std::min(a.size() - 1, static_cast<size_t>(t / 4));
      row.at<uint8_t>(0, t) = static_cast<uint8_t>(std::clamp(a[j] / amax, 0.f, 1.f) * 255.f);
    }
    cv::Mat big, col;
    cv::resize(row, big, {plot_w, row_h - 2}, 0, 0, cv::INTER_NEAREST);
    cv::applyColorMap(big, col, cv::COLORMAP_VIRIDIS);
    const int y = y0 + static_cast<int>(w) * row_h;
    col.copyTo(img(cv::Rect(left, y, plot_w, row_h - 2)));
    std::string label = words[w].text.size() > 16 ? words[w].text.substr(0, 15) + "~" : words[w].text;
    cv::putText(img, label, {8, y + row_h - 7}, font, 0.45, ink, 1, cv::LINE_AA);
  }
  // Time axis in seconds (10 ms per log-mel frame).
  const int ya = y0 + row_h * static_cast<int>(words.size()) + 4;
  cv::line(img, {left, ya}, {left + plot_w, ya}, ink, 1);
  const double secs = T * 0.01;
  const double step = secs > 8 ? 2.0 : secs > 4 ? 1.0 : secs > 1.5 ? 0.5 : 0.25;
  for (double s = 0; s <= secs + 1e-9; s += step) {
    const int x = left + static_cast<int>(s / secs * plot_w);
    cv::line(img, {x, ya}, {x, ya + 5}, ink, 1);
    char b[16];
    std::snprintf(b, sizeof b, "%.2gs", s);
    cv::putText(img, b, {std::min(x - 8, W - 40), ya + 20}, font, 0.4, ink, 1, cv::LINE_AA);
  }
  cv::putText(img, "rows: each word's cross-attention over the 40 ms audio frames (last fusion layer, mean over heads,",
              {8, ya + 36}, font, 0.35, ink, 1, cv::LINE_AA);
  cv::putText(img, "each row scaled to its own maximum: yellow = most attended)", {8, ya + 48}, font, 0.35, ink, 1,
              cv::LINE_AA);
  std::vector<uint8_t> buf;
  if (!cv::imencode(".png", img, buf)) throw InternalError("could not encode the attention map as PNG", path);
  write_file_atomic(path, std::string(buf.begin(), buf.end()));
}

int run_sentiment(const std::vector<std::string>& args) {
  Common c;
  std::string model, text, audio_path, map_path;
  bool as_json = false;
  double max_seconds = audio::kDefaultMaxSeconds;
  po::options_description opts("Options");
  opts.add_options()
    ("text,t", po::value(&text)->default_value("", "none"), "what was said (required)")
    ("audio,a", po::value(&audio_path)->default_value("", "none"),
     "how it was said: WAV, FLAC, OGG... any rate and channel count (required)")
    ("model,m", po::value(&model)->default_value("", "built-in"),
     "model directory (default: the built-in assets/models/sentiment, or $XMODAL_SENTIMENT_MODEL_DIR)")
    ("json", po::bool_switch(&as_json), "print one JSON object: label, probabilities, tokens, source format, timings")
    ("attention-map", po::value(&map_path)->default_value("", "none"),
     "write a PNG: the log-mel spectrogram and, per word, which audio frames it attended to")
    ("max-audio-seconds", po::value(&max_seconds)->default_value(audio::kDefaultMaxSeconds),
     "refuse longer audio (checked from the file header)");
  opts.add(common_options(c));
  po::positional_options_description pos;
  parse("sentiment", args, opts, pos, c);
  if (c.help) {
    print_help("sentiment", "--text TEXT --audio FILE [--model DIR] [--json] [--attention-map OUT.png]",
               "Classifies what a speaker means as negative, neutral or positive from the words and the voice\n"
               "together: the words' tokens attend to the audio frames (cross-attention), so the same words can\n"
               "mean different things (\"well, the show is over\" cheerful or flat; praise in a bored voice is\n"
               "sarcasm). Prints the label and the class probabilities. The built-in model is a small demo\n"
               "trained on synthetic speech (espeak-ng, English); see training/README-sentiment.md.\n"
               "Audio is downmixed, resampled to 16 kHz and turned into 80 log-mel bins (25 ms / 10 ms).",
               opts,
               "  xmodal sentiment --text \"well, the show is over\" --audio assets/samples/sentiment-happy.wav\n"
               "  xmodal sentiment -t \"the concert was wonderful\" -a assets/samples/sentiment-sarcastic.wav --json\n"
               "  xmodal sentiment -t \"well, the show is over\" -a assets/samples/sentiment-flat.wav --attention-map map.png\n"
               "  xmodal sentiment -t \"what a day\" -a clip.flac -m my_model_dir\n");
    return 0;
  }
  if (text.find_first_not_of(" \t\r\n\f\v") == std::string::npos)
    throw UsageError(text.empty() ? "--text is required (see xmodal sentiment --help)" : "--text is blank", "--text");
  if (audio_path.empty()) throw UsageError("--audio is required (see xmodal sentiment --help)", "--audio");
  if (!(max_seconds > 0.0) || max_seconds > 24 * 3600.0)
    throw UsageError("--max-audio-seconds must be in (0, 86400], got " + std::to_string(max_seconds), "--max-audio-seconds");
  if (!map_path.empty() && (map_path.size() < 4 || map_path.compare(map_path.size() - 4, 4, ".png") != 0))
    throw UsageError("--attention-map must name a .png file, got '" + map_path + "'", "--attention-map");

  auto t0 = Clock::now();
  const SentimentModel m = SentimentModel::load(resolve_sentiment_model_dir(model));
  const double load_ms = ms_since(t0);
  verbose("model: " + m.dir());
  const std::vector<int> ids = m.tokenize(text);  // bad text fails before the audio is read

  t0 = Clock::now();
  audio::LoadOptions lo;
  lo.max_seconds = max_seconds;
  const audio::Audio a = audio::load_audio(audio_path, lo);
  const double decode_ms = ms_since(t0);
  t0 = Clock::now();
  const Tensor logmel = audio::log_mel(a.samples);
  const double feat_ms = ms_since(t0);
  t0 = Clock::now();
  const SentimentResult r = m.classify(ids, m.encode_audio(logmel), !map_path.empty());
  const double model_ms = ms_since(t0);
  const auto& labels = m.config().labels;

  if (!map_path.empty()) {
    char title[160];
    std::snprintf(title, sizeof title, "%s (p=%.2f)  ", labels[static_cast<size_t>(r.label)].c_str(),
                  r.probs[static_cast<size_t>(r.label)]);
    write_attention_map(map_path, logmel, words_of(r.pieces, r.attention), title + text);
    verbose("attention map: " + map_path);
  }
  if (as_json) {
    nlohmann::json probs = nlohmann::json::object();
    for (size_t i = 0; i < labels.size(); ++i) probs[labels[i]] = r.probs[i];
    nlohmann::json j = {
        {"text", text},
        {"audio", audio_path},
        {"label", labels[static_cast<size_t>(r.label)]},
        {"probabilities", probs},
        {"tokens", r.pieces},
        {"audio_seconds", a.seconds()},
        {"source", {{"format", a.source.format}, {"encoding", a.source.encoding},
                    {"sample_rate", a.source.sample_rate}, {"channels", a.source.channels}}},
        {"ms", {{"load_model", load_ms}, {"decode", decode_ms}, {"features", feat_ms}, {"model", model_ms}}}};
    if (!map_path.empty()) j["attention_map"] = map_path;
    std::cout << j.dump(2) << "\n";
  } else {
    std::cout << labels[static_cast<size_t>(r.label)] << "\n";
    for (size_t i = 0; i < labels.size(); ++i) {
      char line[96];
      std::snprintf(line, sizeof line, "  %-10s %.4f\n", labels[i].c_str(), r.probs[i]);
      std::cout << line;
    }
  }
  verbose("decode " + std::to_string(decode_ms) + " ms, features " + std::to_string(feat_ms) + " ms, model " +
          std::to_string(model_ms) + " ms (" + std::to_string(a.seconds()) + " s of audio)");
  return 0;
}

}  // namespace

XMODAL_SUBCOMMAND("sentiment", "positive/neutral/negative from words + voice (text attends to audio)", run_sentiment);

}  // namespace xmodal::app
