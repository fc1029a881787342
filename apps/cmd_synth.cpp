// xmodal synth: renders the scenes benchmark (SCENES.md) into a dataset folder.
#include <filesystem>
#include <iostream>
#include <regex>

#include "apps/progress.hpp"
#include "apps/subcommand.hpp"
#include "core/error.hpp"
#include "pipeline/scenes.hpp"

namespace xmodal::app {
namespace {

namespace fs = std::filesystem;

// The paper's split sizes; a split is just a default image count and a default seed, so
// `--split test` is the same as `--images 200 --seed 2` (explicit --images/--seed win).
struct SplitDefaults {
  const char* name;
  int64_t images;
  uint64_t seed;
};
constexpr SplitDefaults kSplits[] = {{"train", 9800, 1}, {"test", 200, 2}, {"extra", 2000, 3}};

// Refuses a non-empty DIR unless --force. With --force, removes only what synth writes
// (images/NNNNNN.png and the four JSON files) so no stale image survives a smaller run;
// anything else in DIR is left alone.
void prepare_out_dir(const std::string& out, bool force) {
  std::error_code ec;
  if (!fs::exists(out, ec)) return;
  if (!fs::is_directory(out, ec)) throw InputError(out, "exists and is not a directory");
  if (fs::is_empty(out, ec)) return;
  if (!force) throw UsageError("output directory is not empty; use --force to overwrite it", out);
  for (const char* f : {"scenes.json", "captions.json", "questions.json", "annotations.json"}) fs::remove(fs::path(out) / f, ec);
  const fs::path img = fs::path(out) / "images";
  if (fs::is_directory(img, ec)) {
    static const std::regex kName("[0-9]{6,}\\.png");
    std::vector<fs::path> stale;
    for (const auto& e : fs::directory_iterator(img, ec))
      if (e.is_regular_file() && std::regex_match(e.path().filename().string(), kName)) stale.push_back(e.path());
    for (const auto& p : stale) fs::remove(p, ec);
  }
}

int run_synth(const std::vector<std::string>& args) {
  Common c;
  std::string preset_s = "shapes", split, out, sheet;
  int64_t images = 1000;
  uint64_t seed = 0;
  int sheet_images = 8;
  bool force = false;
  po::options_description opts("Options");
  opts.add_options()
    ("preset", po::value(&preset_s)->default_value(preset_s), "sort-of-clevr | shapes")
    ("images,n", po::value(&images)->default_value(images), "number of images (ids 0..N-1)")
    ("seed", po::value(&seed)->default_value(seed), "random seed; the same seed gives byte-identical files")
    ("split", po::value(&split)->default_value("", "none"),
     "train | test | extra: shorthand for --images 9800 --seed 1 | --images 200 --seed 2 | "
     "--images 2000 --seed 3 (Sort-of-CLEVR sizes; explicit --images/--seed win)")
    ("out,o", po::value(&out)->default_value("", "none"), "output directory (required unless only --contact-sheet)")
    ("force", po::bool_switch(&force), "write into a non-empty --out (replaces synth's own files only)")
    ("contact-sheet", po::value(&sheet)->default_value("", "none"),
     "also write a PNG grid of the first scenes of BOTH presets for --seed, with a caption and a Q&A under each")
    ("sheet-images", po::value(&sheet_images)->default_value(sheet_images), "scenes per preset on the contact sheet");
  opts.add(common_options(c));
  po::variables_map vm = parse("synth", args, opts, {}, c);
  if (c.help) {
    print_help("synth", "--out DIR [--preset P] [--images N] [--seed S] [options]",
               "Renders the scenes benchmark: DIR/images/NNNNNN.png, DIR/scenes.json (the objects),\n"
               "DIR/captions.json (COCO, 5 per image) and DIR/questions.json + DIR/annotations.json\n"
               "(VQA-v2; 20 per image for sort-of-clevr, 10 for shapes), as SCENES.md specifies. Image i\n"
               "depends only on (preset, seed, i): a smaller run is a prefix of a bigger one.",
               opts,
               "  xmodal synth --preset shapes --images 10000 --seed 0 --out data/shapes-train\n"
               "  xmodal synth --preset sort-of-clevr --split train --out data/soc-train\n"
               "  xmodal synth --preset sort-of-clevr --split test --out data/soc-test\n"
               "  xmodal synth --contact-sheet docs/scenes.png\n");
    return 0;
  }
  auto preset = scenes::parse_preset(preset_s);
  if (!preset) throw UsageError("unknown --preset '" + preset_s + "' (expected sort-of-clevr or shapes)", "--preset");
  if (!split.empty()) {
    const SplitDefaults* d = nullptr;
    for (const auto& s : kSplits)
      if (split == s.name) d = &s;
    if (!d) throw UsageError("unknown --split '" + split + "' (expected train, test or extra)", "--split");
    if (vm["images"].defaulted()) images = d->images;
    if (vm["seed"].defaulted()) seed = d->seed;
  }
  if (images < 1 || images > 1000000)
    throw UsageError("--images must be in [1, 1000000], got " + std::to_string(images), "--images");
  if (sheet_images < 1 || sheet_images > 64)
    throw UsageError("--sheet-images must be in [1, 64], got " + std::to_string(sheet_images), "--sheet-images");
  if (out.empty() && sheet.empty()) throw UsageError("--out DIR is required (see xmodal synth --help)", "--out");

  if (!sheet.empty()) {
    scenes::write_contact_sheet(sheet, seed, sheet_images);
    info("synth: wrote contact sheet " + sheet);
  }
  if (out.empty()) return 0;

  prepare_out_dir(out, force);
  scenes::SynthOptions so;
  so.preset = *preset;
  so.images = images;
  so.seed = seed;
  so.out = out;
  Progress bar("synth", images, "images", !c.quiet);
  auto sum = scenes::write_dataset(so, [&bar](int64_t n) { bar.advance(n); });
  bar.finish();
  info("synth: " + std::string(scenes::preset_name(so.preset)) + " seed " + std::to_string(seed) + ": " +
       std::to_string(sum.images) + " images, " + std::to_string(sum.captions) + " captions, " +
       std::to_string(sum.questions) + " questions in " + out);
  verbose("synth: " + Progress::format_duration(sum.seconds_images) + " for the images, " +
          Progress::format_duration(sum.seconds - sum.seconds_images) + " for the JSON files");
  return 0;
}

}  // namespace

XMODAL_SUBCOMMAND("synth", "render the scenes benchmark (images, captions, questions)", run_synth);

}  // namespace xmodal::app
