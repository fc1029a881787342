// What xmodal caption, vqa and eval share, for every model behind pipeline/vlm.hpp (the built-in
// scenes model and BLIP checkpoints): model and decoding options, input expansion (files,
// folders, globs, --list), per-stage timings with peak RSS, image ids for COCO results.
#pragma once
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/subcommand.hpp"
#include "pipeline/vlm.hpp"

namespace xmodal::app {

// ---------------------------------------------------------------------------------- options

struct ModelOpts {
  std::string model;  // "" = the built-in scenes model ($XMODAL_MODEL_DIR, or next to the binary)
  bool bf16 = false;
  int batch = 8;
};

struct DecodeOpts {
  int beam = 1;
  float length_penalty = 1.0f;
  int min_len = 0, max_len = 0;  // 0 = the model's default
  std::string prompt;            // caption prompt (BLIP), stripped from the output
  std::string first_token = "cls";
  int map_layer = -1, map_head = -1;
};

// --model, --bf16, --batch.
po::options_description model_options(ModelOpts& o);
// --beam, --length-penalty, --min-len, --max-len (+ --prompt for captions, --first-token for VQA).
po::options_description decode_options(DecodeOpts& o, bool caption, bool vqa);
// --map-layer, --map-head.
po::options_description map_options(DecodeOpts& o);
// Older spellings kept working (--beams, --max-length, --min-length, --attention-maps); not shown
// in --help. Call apply_aliases after parse.
po::options_description alias_options();
void apply_aliases(const po::variables_map& vm, DecodeOpts& d, std::string* maps_dir);

// UsageError for out-of-range values, naming the flag.
void check_options(const ModelOpts& m, const DecodeOpts& d);
VlmRequest make_request(const DecodeOpts& d, bool attention_maps);

// The model directory that --model (or the default) names.
std::string model_dir(const ModelOpts& o);
// Opens it through open_vlm; load_ms gets the wall time.
std::unique_ptr<Vlm> open_model(const ModelOpts& o, bool attention_maps, double* load_ms);

// ----------------------------------------------------------------------------------- inputs

struct Input {
  std::string path;   // an image file to read
  std::string error;  // non-empty: this argument failed before reading (one line, "xmodal: ...")
};

// Expands the arguments and the lines of list_file ("" = none, "-" = stdin): a folder gives the
// image files directly inside it (by extension, sorted by name, not recursive), a pattern with
// * ? or [ that names no existing file is expanded with glob(3) (sorted), anything else is a
// file. A pattern matching nothing or a folder without images is an Input with an error.
std::vector<Input> expand_inputs(const std::vector<std::string>& args, const std::string& list_file);

// The COCO image_id of an input file: the last run of digits in its file name
// (COCO_val2014_000000391895.jpg -> 391895, scene-3.png -> 3); -1 when there is none.
int64_t image_id_from_name(const std::string& path);

// One entry per non-blank line, or a JSON array of strings (BLIP's answer_list.json). InputError
// naming the file when it is empty or malformed; `what` names the entries ("answer").
std::vector<std::string> read_text_list(const std::string& path, const std::string& what);

// ------------------------------------------------------------------------------ interruption

// SIGINT and SIGTERM (Ctrl-C, a scheduler's preemption) set a flag that the batch loops check, so
// they stop after the current batch and keep what was done; a second signal kills at once.
void install_stop_handlers();
int stop_signal();  // 0, or the signal received

// ---------------------------------------------------------------------------------- timings

struct Timings {
  double load_ms = 0;    // model load
  double read_ms = 0;    // image file read + decode
  double encode_ms = 0;  // preprocessing + image encoder (one figure: Vlm::encode)
  double text_ms = 0;    // question encoding (VQA)
  double decode_ms = 0;  // text decoding
  int64_t images = 0, sequences = 0, tokens = 0;  // tokens: generated ids
};
int64_t peak_rss_bytes();  // getrusage(RUSAGE_SELF).ru_maxrss
nlohmann::json timings_json(const Timings& t);
// Several "timings: ..." lines (to stderr by the callers).
std::string timings_text(const Timings& t);
// Generated ids of a result (without BLIP's leading [DEC] and prompt).
int64_t generated_tokens(const VlmResult& r, const Vlm& m);

}  // namespace xmodal::app
