// xmodal inspect: what an image file holds and what a model would see of it (decode, EXIF
// orientation, optional PIL-style resize and center crop, written back out as an image).
#include <charconv>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>

#include <nlohmann/json.hpp>

#include "apps/subcommand.hpp"
#include "core/error.hpp"
#include "encoders/image.hpp"

namespace xmodal::app {
namespace {

namespace fs = std::filesystem;

struct Size2 {
  int w = 0, h = 0;
};

// "384x384" (or "384X384") -> {384, 384}; each side in [1, 65535].
Size2 parse_size(const std::string& s, const std::string& flag) {
  const auto x = s.find_first_of("xX");
  Size2 r;
  auto num = [&](std::string_view part, int& out) {
    auto [p, ec] = std::from_chars(part.data(), part.data() + part.size(), out);
    return ec == std::errc() && p == part.data() + part.size() && out >= 1 && out <= 65535;
  };
  if (x == std::string::npos || !num(std::string_view(s).substr(0, x), r.w) || !num(std::string_view(s).substr(x + 1), r.h))
    throw UsageError(flag + " wants WIDTHxHEIGHT with each side in [1, 65535], e.g. 384x384; got '" + s + "'", flag);
  return r;
}

std::string size_str(int w, int h) { return std::to_string(w) + "x" + std::to_string(h); }

int run_inspect(const std::vector<std::string>& args) {
  Common c;
  std::vector<std::string> images;
  double max_mp = static_cast<double>(kDefaultMaxPixels) / 1e6;
  std::string resize_s, crop_s, resample_s = "bicubic", out;
  bool as_json = false;
  po::options_description opts("Options");
  opts.add_options()
    ("max-pixels", po::value(&max_mp)->default_value(max_mp),
     "refuse images with more megapixels than this (width*height/1e6), checked from the header before decoding")
    ("resize", po::value(&resize_s)->default_value("", "none"), "resize to WIDTHxHEIGHT as PIL's Image.resize does, e.g. 384x384")
    ("resample", po::value(&resample_s)->default_value(resample_s), "bicubic | bilinear (PIL's filters, antialiased)")
    ("crop", po::value(&crop_s)->default_value("", "none"), "center-crop to WIDTHxHEIGHT after any resize (pads with black if larger)")
    ("out,o", po::value(&out)->default_value("", "none"),
     "write the (oriented, resized, cropped) RGB image here: a .png/.jpg/.bmp/.ppm/.webp/.tif file for one image, "
     "or an existing directory (DIR/<name>.png for each image)")
    ("json", po::bool_switch(&as_json), "print a JSON array (one object per image; bad images get an \"error\")");
  opts.add(common_options(c));
  po::options_description hidden;
  hidden.add_options()("image", po::value(&images)->multitoken(), "image files");
  po::options_description all_opts;
  all_opts.add(opts).add(hidden);
  po::positional_options_description pos;
  pos.add("image", -1);
  parse("inspect", args, all_opts, pos, c);
  if (c.help) {
    print_help("inspect", "IMAGE... [--max-pixels MP] [--resize WxH] [--resample bicubic|bilinear] [--crop WxH] [--out PATH] [--json]",
               "Decodes each image as the models do (OpenCV; 16-bit scaled to 8-bit, alpha dropped, CMYK\n"
               "converted, EXIF orientation applied) and prints its format, stored size, channels, bit depth\n"
               "and orientation. With --resize/--crop/--out it shows and writes what a model sees.\n"
               "A bad image is reported on stderr as 'xmodal: FILE: problem'; the others are still\n"
               "processed, and the exit code is 3 if any image failed.",
               opts,
               "  xmodal inspect photo.jpg\n"
               "  xmodal inspect a.png b.jpg c.webp --json\n"
               "  xmodal inspect photo.jpg --resize 384x384 --resample bicubic --out seen.png\n"
               "  xmodal inspect shots/*.jpg --resize 224x224 --out /tmp/seen/\n"
               "  xmodal inspect huge.tif --max-pixels 200\n");
    return 0;
  }
  if (images.empty()) throw UsageError("no image given (see xmodal inspect --help)", "inspect");
  if (!std::isfinite(max_mp) || max_mp <= 0 || max_mp > 1e7)
    throw UsageError("--max-pixels wants megapixels in (0, 1e7], got " + std::to_string(max_mp), "--max-pixels");
  ImageLoadOptions lo;
  lo.max_pixels = std::max<int64_t>(1, std::llround(max_mp * 1e6));
  const auto resample = resample_from_name(resample_s);
  if (!resample) throw UsageError("--resample wants bicubic or bilinear, got '" + resample_s + "'", "--resample");
  std::optional<Size2> rsz, crop;
  if (!resize_s.empty()) rsz = parse_size(resize_s, "--resize");
  if (!crop_s.empty()) crop = parse_size(crop_s, "--crop");

  // --out: a file for one image, or a directory. Check before decoding anything.
  std::error_code ec;
  const bool out_dir = !out.empty() && fs::is_directory(out, ec);
  std::vector<std::string> out_paths(images.size());
  if (!out.empty()) {
    if (!out_dir && images.size() > 1)
      throw UsageError("with several images --out must be an existing directory, '" + out + "' is not", "--out");
    if (!out_dir && !can_save_image(out))
      throw UsageError("--out '" + out + "': unknown image extension (use .png, .jpg, .bmp, .ppm, .webp or .tif)", "--out");
    std::map<std::string, std::string> seen;
    for (size_t i = 0; i < images.size(); ++i) {
      if (!out_dir) {
        out_paths[i] = out;
        continue;
      }
      out_paths[i] = (fs::path(out) / (fs::path(images[i]).stem().string() + ".png")).string();
      auto [it, fresh] = seen.emplace(out_paths[i], images[i]);
      if (!fresh)
        throw UsageError("'" + it->second + "' and '" + images[i] + "' would both be written to " + out_paths[i], "--out");
    }
  }

  nlohmann::ordered_json all = nlohmann::ordered_json::array();
  int failed = 0;
  for (size_t i = 0; i < images.size(); ++i) {
    const std::string& file = images[i];
    nlohmann::ordered_json j;
    j["file"] = file;
    try {
      ImageInfo in;
      Image im = load_image(file, lo, &in);
      std::string line = file + ": " + in.format + ", " + size_str(in.stored_width, in.stored_height) + ", " +
                         std::to_string(in.channels) + (in.channels == 1 ? " channel" : " channels") +
                         (in.color.empty() ? "" : " (" + in.color + ")") + ", " + std::to_string(in.bit_depth) + "-bit";
      if (in.exif_orientation != 1)
        line += ", EXIF orientation " + std::to_string(in.exif_orientation) + " applied -> " + size_str(in.width, in.height);
      if (in.alpha_dropped) line += ", alpha dropped";
      if (in.animated) line += ", animated (first frame)";
      j["format"] = in.format;
      j["width"] = in.stored_width;
      j["height"] = in.stored_height;
      j["channels"] = in.channels;
      j["color"] = in.color;
      j["bit_depth"] = in.bit_depth;
      j["exif_orientation"] = in.exif_orientation;
      j["oriented_width"] = in.width;
      j["oriented_height"] = in.height;
      j["alpha_dropped"] = in.alpha_dropped;
      j["animated"] = in.animated;
      if (rsz) {
        im = resize(im, rsz->w, rsz->h, *resample);
        line += "; resized to " + size_str(im.width, im.height) + " " + resample_name(*resample);
        j["resized"] = {{"width", im.width}, {"height", im.height}, {"resample", resample_name(*resample)}};
      }
      if (crop) {
        im = center_crop(im, crop->w, crop->h);
        line += "; cropped to " + size_str(im.width, im.height);
        j["cropped"] = {{"width", im.width}, {"height", im.height}};
      }
      if (!out.empty()) {
        save_image(im, out_paths[i]);
        line += "; wrote " + out_paths[i];
        j["out"] = out_paths[i];
      }
      if (!as_json) std::cout << line << "\n" << std::flush;
    } catch (const InputError& e) {
      ++failed;
      std::cerr << e.one_line() << "\n";
      j["error"] = e.what();
    }
    all.push_back(std::move(j));
  }
  if (as_json) std::cout << all.dump(2) << "\n";
  if (failed && images.size() > 1) verbose("inspect: " + std::to_string(failed) + " of " + std::to_string(images.size()) + " images failed");
  return failed ? static_cast<int>(ExitCode::bad_input) : 0;
}

}  // namespace

XMODAL_SUBCOMMAND("inspect", "show what an image file holds and what a model sees of it", run_inspect);

}  // namespace xmodal::app
