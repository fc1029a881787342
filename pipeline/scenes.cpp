// Scenes: names, RNG, geometry, scene generation and rendering (see scenes.hpp, SCENES.md).
#include "pipeline/scenes.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "core/error.hpp"

namespace xmodal::scenes {

// ---------------------------------------------------------------- names
const char* preset_name(Preset p) { return p == Preset::sort_of_clevr ? "sort-of-clevr" : "shapes"; }

const char* color_name(Color c) {
  switch (c) {
    case Color::red: return "red";
    case Color::green: return "green";
    case Color::blue: return "blue";
    case Color::orange: return "orange";
    case Color::gray: return "gray";
    case Color::yellow: return "yellow";
    case Color::purple: return "purple";
  }
  return "?";
}
const char* shape_name(Shape s) {
  switch (s) {
    case Shape::circle: return "circle";
    case Shape::square: return "square";
    case Shape::triangle: return "triangle";
  }
  return "?";
}
const char* shape_plural(Shape s) {
  switch (s) {
    case Shape::circle: return "circles";
    case Shape::square: return "squares";
    case Shape::triangle: return "triangles";
  }
  return "?";
}
const char* size_name(Size s) { return s == Size::small ? "small" : "large"; }

Rgb color_rgb(Color c) {
  switch (c) {
    case Color::red: return {255, 0, 0};
    case Color::green: return {0, 255, 0};
    case Color::blue: return {0, 0, 255};
    case Color::orange: return {255, 156, 0};
    case Color::gray: return {128, 128, 128};
    case Color::yellow: return {255, 255, 0};
    case Color::purple: return {128, 0, 128};
  }
  return {0, 0, 0};
}

std::optional<Preset> parse_preset(const std::string& s) {
  if (s == "sort-of-clevr") return Preset::sort_of_clevr;
  if (s == "shapes") return Preset::shapes;
  return std::nullopt;
}
std::optional<Color> parse_color(const std::string& s) {
  for (int i = 0; i < 7; ++i)
    if (s == color_name(static_cast<Color>(i))) return static_cast<Color>(i);
  return std::nullopt;
}
std::optional<Shape> parse_shape(const std::string& s) {
  for (int i = 0; i < 3; ++i)
    if (s == shape_name(static_cast<Shape>(i))) return static_cast<Shape>(i);
  return std::nullopt;
}
std::optional<Size> parse_size(const std::string& s) {
  if (s == "small") return Size::small;
  if (s == "large") return Size::large;
  return std::nullopt;
}

std::string image_file_name(int64_t image_id) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%06lld.png", static_cast<long long>(image_id));
  return buf;
}

// ---------------------------------------------------------------- RNG
uint64_t splitmix64_mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t Rng::next() {
  state_ += 0x9e3779b97f4a7c15ull;
  return splitmix64_mix(state_);
}

uint64_t Rng::below(uint64_t n) {
  check(n > 0, "Rng::below(0)");
  // Reject the lowest (2^64 mod n) values so that every residue is equally likely.
  const uint64_t threshold = (0 - n) % n;
  for (;;) {
    uint64_t x = next();
    if (x >= threshold) return x % n;
  }
}

int Rng::uniform_int(int lo, int hi) {
  check(lo <= hi, "Rng::uniform_int: empty range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return lo + static_cast<int>(below(static_cast<uint64_t>(hi - lo) + 1));
}

uint64_t image_key(Preset p, uint64_t seed, int64_t image_id, uint64_t stream) {
  uint64_t h = splitmix64_mix(seed + 0x5ce4e5b9a1b2c3d4ull);
  h = splitmix64_mix(h ^ (p == Preset::shapes ? 0x73686170ull : 0x736f6663ull));
  h = splitmix64_mix(h ^ static_cast<uint64_t>(image_id));
  return splitmix64_mix(h + stream * 0x9e3779b97f4a7c15ull);
}

// ---------------------------------------------------------------- geometry
int64_t dist2(const Object& a, const Object& b) {
  const int64_t dx = a.cx - b.cx, dy = a.cy - b.cy;
  return dx * dx + dy * dy;
}

const char* rel_phrase(Rel r) {
  switch (r) {
    case Rel::left_of: return "left of";
    case Rel::right_of: return "right of";
    case Rel::above: return "above";
    case Rel::below: return "below";
  }
  return "?";
}

bool relation_holds(const Object& a, Rel rel, const Object& b) {
  constexpr int kMin = 12;  // SCENES.md: centres differ by at least 12 px on that axis
  switch (rel) {
    case Rel::left_of: return b.cx - a.cx >= kMin;
    case Rel::right_of: return a.cx - b.cx >= kMin;
    case Rel::above: return b.cy - a.cy >= kMin;  // y grows downwards
    case Rel::below: return a.cy - b.cy >= kMin;
  }
  return false;
}

int extreme_object(const Scene& s, int ref, bool farthest, double min_gap) {
  // objects other than ref: [N-1]; the best and the runner-up by squared distance (exact ints)
  int best = -1;
  int64_t best_d2 = 0, second_d2 = -1;
  for (int i = 0; i < static_cast<int>(s.objects.size()); ++i) {
    if (i == ref) continue;  // the reference is never its own closest/farthest
    const int64_t d2 = dist2(s.objects[i], s.objects[ref]);
    const bool better = best < 0 || (farthest ? d2 > best_d2 : d2 < best_d2);
    if (better) {
      if (best >= 0) second_d2 = best_d2;
      best = i;
      best_d2 = d2;
    } else if (second_d2 < 0 || (farthest ? d2 > second_d2 : d2 < second_d2)) {
      second_d2 = d2;
    }
  }
  if (best < 0) return -1;
  if (second_d2 < 0) return best;          // only one other object
  if (second_d2 == best_d2) return -1;     // exact tie: the answer would rest on it
  const double gap = std::fabs(std::sqrt(static_cast<double>(second_d2)) - std::sqrt(static_cast<double>(best_d2)));
  return gap >= min_gap ? best : -1;
}

double extent(const Object& o) { return o.shape == Shape::square ? o.r * std::sqrt(2.0) : static_cast<double>(o.r); }

// ---------------------------------------------------------------- generation
namespace {

// Sort-of-CLEVR (Santoro et al. 2017): one object per colour, in this colour order.
constexpr Color kSocColors[6] = {Color::red, Color::green, Color::blue, Color::orange, Color::gray, Color::yellow};
constexpr Color kShapesColors[7] = {Color::red,    Color::green,  Color::blue, Color::orange,
                                    Color::purple, Color::yellow, Color::gray};

// Whether make_captions and make_questions can fill their quotas for this scene. Scenes that
// cannot are redrawn (it does not happen in practice: see the test "generation never needs
// a redraw for quota reasons" which counts them).
bool quotas_possible(const Scene& s) {
  const int n = static_cast<int>(s.objects.size());
  int relations = 0, superlatives = 0;
  for (int a = 0; a < n; ++a)
    for (int b = 0; b < n; ++b)
      if (a != b)
        for (Rel r : {Rel::left_of, Rel::right_of, Rel::above, Rel::below})
          relations += relation_holds(s.objects[a], r, s.objects[b]);
  for (int ref = 0; ref < n; ++ref)
    for (bool far : {false, true}) superlatives += extreme_object(s, ref, far, 4.0) >= 0;
  if (relations < (superlatives > 0 ? 2 : 3)) return false;
  if (s.preset == Preset::sort_of_clevr) {
    // 10 relational questions from 6 colours x {B1, B2, B3}; B1/B2 are dropped on exact ties.
    int askable = n;  // B3
    for (int ref = 0; ref < n; ++ref)
      for (bool far : {false, true}) askable += extreme_object(s, ref, far, 0.0) >= 0;
    if (askable < 10) return false;
  }
  return true;
}

Scene draw_sort_of_clevr(Rng& rng) {
  Scene s;
  s.width = s.height = 75;
  s.background = 255;
  for (Color c : kSocColors) {
    Object o;
    o.color = c;
    o.size = Size::small;
    o.r = 5;
    // Centres are integers in [5, 70); redrawn while closer than 10 px to an earlier centre.
    for (;;) {
      o.cx = rng.uniform_int(5, 69);
      o.cy = rng.uniform_int(5, 69);
      bool close = false;
      for (const Object& e : s.objects) close = close || dist2(o, e) < 100;
      if (!close) break;
    }
    o.shape = rng.coin() ? Shape::square : Shape::circle;  // p = 1/2
    s.objects.push_back(o);
  }
  return s;
}

// Integer centre range on one axis such that the outline lies within [2, 125].
struct Range {
  int lo, hi;
};
Range x_range(Shape sh, int r) {
  const double half = sh == Shape::triangle ? r * std::sqrt(3.0) / 2.0 : r;
  return {static_cast<int>(std::ceil(2.0 + half)), static_cast<int>(std::floor(125.0 - half))};
}
Range y_range(Shape sh, int r) {
  // Triangle pointing up, centred on its centroid: top vertex at cy - r, base at cy + r/2.
  if (sh == Shape::triangle) return {2 + r, static_cast<int>(std::floor(125.0 - r / 2.0))};
  return {2 + r, 125 - r};
}

Scene draw_shapes(Rng& rng) {
  for (;;) {
    Scene s;
    s.width = s.height = 128;
    s.background = rng.uniform_int(200, 255);
    const int n = rng.uniform_int(3, 6);
    std::vector<Color> colors(std::begin(kShapesColors), std::end(kShapesColors));
    rng.shuffle(colors);
    for (int i = 0; i < n; ++i) {
      Object o;
      o.color = colors[i];
      o.shape = static_cast<Shape>(rng.below(3));
      o.size = rng.coin() ? Size::large : Size::small;
      o.r = o.size == Size::large ? 14 : 8;
      s.objects.push_back(o);
    }
    // Place objects one by one, uniformly in their allowed box, redrawing a centre that breaks
    // the non-overlap rule (distance >= R1 + R2 + 4). If an object finds no place in 200
    // tries, restart the placement; after 50 restarts draw new attributes (crowded scenes of
    // six large squares are then slightly rarer than independent draws would make them).
    for (int restart = 0; restart < 50; ++restart) {
      bool ok = true;
      for (int i = 0; i < n && ok; ++i) {
        Object& o = s.objects[i];
        const Range rx = x_range(o.shape, o.r), ry = y_range(o.shape, o.r);
        ok = false;
        for (int t = 0; t < 200 && !ok; ++t) {
          o.cx = rng.uniform_int(rx.lo, rx.hi);
          o.cy = rng.uniform_int(ry.lo, ry.hi);
          ok = true;
          for (int j = 0; j < i && ok; ++j) {
            const double need = extent(o) + extent(s.objects[j]) + 4.0;
            ok = static_cast<double>(dist2(o, s.objects[j])) >= need * need;
          }
        }
      }
      if (ok) return s;
    }
  }
}

}  // namespace

Scene generate_scene(Preset p, uint64_t seed, int64_t image_id) {
  Rng rng(image_key(p, seed, image_id, 0));
  for (;;) {
    Scene s = p == Preset::sort_of_clevr ? draw_sort_of_clevr(rng) : draw_shapes(rng);
    s.preset = p;
    s.image_id = image_id;
    s.file_name = image_file_name(image_id);
    if (quotas_possible(s)) return s;
  }
}

// ---------------------------------------------------------------- rendering
namespace {

// Blends colour c over pixel px with coverage a in [0, 1].
inline void blend(uint8_t* px, Rgb c, double a) {
  if (a <= 0) return;
  const uint8_t cc[3] = {c.r, c.g, c.b};
  for (int k = 0; k < 3; ++k) {
    const double v = px[k] + (cc[k] - px[k]) * a;
    px[k] = static_cast<uint8_t>(std::lround(std::clamp(v, 0.0, 255.0)));
  }
}

// Sort-of-CLEVR: hard edges. Square: pixels cx-5..cx+5; circle: pixels with dx^2+dy^2 <= r^2,
// which is exactly what OpenCV's filled cv::circle (the published generator's call) draws for r = 5.
void draw_hard(std::vector<uint8_t>& img, int w, int h, const Object& o) {
  const Rgb c = color_rgb(o.color);
  for (int y = o.cy - o.r; y <= o.cy + o.r; ++y)
    for (int x = o.cx - o.r; x <= o.cx + o.r; ++x) {
      if (x < 0 || y < 0 || x >= w || y >= h) continue;
      const int dx = x - o.cx, dy = y - o.cy;
      if (o.shape == Shape::circle && dx * dx + dy * dy > o.r * o.r) continue;
      uint8_t* px = &img[(static_cast<size_t>(y) * w + x) * 3];
      px[0] = c.r, px[1] = c.g, px[2] = c.b;
    }
}

// Shapes: coverage-based anti-aliasing. Pixels well inside/outside are decided from the
// signed distance (half-diagonal 0.7072 margin); edge pixels are supersampled 8x8 (squares
// get their exact area coverage analytically).
void draw_aa(std::vector<uint8_t>& img, int w, int h, const Object& o) {
  const Rgb c = color_rgb(o.color);
  const double r = o.r, cx = o.cx, cy = o.cy;
  constexpr double kHalfDiag = 0.7072;
  constexpr int kSS = 8;
  // Triangle edges as unit-normal half-planes n.p <= d (inside).
  const double s3 = std::sqrt(3.0);
  const double vx[3] = {cx, cx + r * s3 / 2, cx - r * s3 / 2};
  const double vy[3] = {cy - r, cy + r / 2, cy + r / 2};
  double nx[3], ny[3], nd[3];
  for (int e = 0; e < 3; ++e) {
    const int f = (e + 1) % 3;
    // Edge from v_e to v_f; with y downwards and vertices clockwise on screen the outward
    // normal is (dy, -dx).
    double ex = vx[f] - vx[e], ey = vy[f] - vy[e];
    double len = std::hypot(ex, ey);
    nx[e] = ey / len, ny[e] = -ex / len;
    nd[e] = nx[e] * vx[e] + ny[e] * vy[e];
  }
  auto tri_sd = [&](double px, double py) {  // max over edges of signed outside distance
    double m = -1e9;
    for (int e = 0; e < 3; ++e) m = std::max(m, nx[e] * px + ny[e] * py - nd[e]);
    return m;
  };
  auto inside = [&](double px, double py) {
    if (o.shape == Shape::circle) return (px - cx) * (px - cx) + (py - cy) * (py - cy) <= r * r;
    return tri_sd(px, py) <= 0;
  };
  const int x0 = std::max(0, o.cx - o.r - 1), x1 = std::min(w - 1, o.cx + o.r + 1);
  const int y0 = std::max(0, o.cy - o.r - 1), y1 = std::min(h - 1, o.cy + o.r + 1);
  for (int y = y0; y <= y1; ++y)
    for (int x = x0; x <= x1; ++x) {
      double a;
      if (o.shape == Shape::square) {
        auto overlap = [](double p, double lo, double hi) {
          return std::max(0.0, std::min(p + 0.5, hi) - std::max(p - 0.5, lo));
        };
        a = overlap(x, cx - r, cx + r) * overlap(y, cy - r, cy + r);
      } else {
        const double sd = o.shape == Shape::circle ? std::hypot(x - cx, y - cy) - r : tri_sd(x, y);
        if (sd <= -kHalfDiag) {
          a = 1;
        } else if (sd >= kHalfDiag) {
          a = 0;
        } else {
          int hits = 0;
          for (int j = 0; j < kSS; ++j)
            for (int i = 0; i < kSS; ++i)
              hits += inside(x - 0.5 + (i + 0.5) / kSS, y - 0.5 + (j + 0.5) / kSS);
          a = hits / double(kSS * kSS);
        }
      }
      blend(&img[(static_cast<size_t>(y) * w + x) * 3], c, a);
    }
}

}  // namespace

std::vector<uint8_t> render_rgb(const Scene& s) {
  std::vector<uint8_t> img(static_cast<size_t>(s.width) * s.height * 3, static_cast<uint8_t>(s.background));
  for (const Object& o : s.objects) {
    if (s.preset == Preset::sort_of_clevr)
      draw_hard(img, s.width, s.height, o);
    else
      draw_aa(img, s.width, s.height, o);
  }
  return img;
}

std::string encode_png(const Scene& s) {
  std::vector<uint8_t> rgb = render_rgb(s);
  cv::Mat bgr(s.height, s.width, CV_8UC3);
  for (int y = 0; y < s.height; ++y)
    for (int x = 0; x < s.width; ++x) {
      const uint8_t* p = &rgb[(static_cast<size_t>(y) * s.width + x) * 3];
      cv::Vec3b& q = bgr.at<cv::Vec3b>(y, x);
      q[0] = p[2], q[1] = p[1], q[2] = p[0];
    }
  std::vector<uchar> buf;
  // Fixed compression parameters: the bytes depend only on the pixels (and zlib/libpng).
  // Z_RLE suits these flat images: measured 0.30 ms and 1.45 KB per shapes image, against
  // 0.45 ms / 1.36 KB for the default strategy and 1.9 ms / 1.19 KB for level 9.
  if (!cv::imencode(".png", bgr, buf, {cv::IMWRITE_PNG_COMPRESSION, 6, cv::IMWRITE_PNG_STRATEGY, cv::IMWRITE_PNG_STRATEGY_RLE}))
    throw InternalError("PNG encoding failed for image " + std::to_string(s.image_id));
  return std::string(buf.begin(), buf.end());
}

}  // namespace xmodal::scenes
