// Scenes benchmark: the generator against SCENES.md, with every answer and caption re-derived
// here from the scene by independent code (own geometry, own parsing of the question text).
#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "core/error.hpp"
#include "pipeline/scenes.hpp"

using namespace xmodal;
using namespace xmodal::scenes;

namespace {

// ---- independent reference logic ----------------------------------------------------------
const std::map<std::string, std::array<int, 3>> kRgb = {
    {"red", {255, 0, 0}},        {"green", {0, 255, 0}},    {"blue", {0, 0, 255}},     {"orange", {255, 156, 0}},
    {"gray", {128, 128, 128}},   {"yellow", {255, 255, 0}}, {"purple", {128, 0, 128}},
};
const char* kNumberWords[] = {"zero", "one", "two", "three", "four", "five", "six"};

// Regexes are compiled once (std::regex construction is slow).
const std::regex& re(const std::string& pattern) {
  static std::map<std::string, std::regex> cache;
  auto it = cache.find(pattern);
  if (it == cache.end()) it = cache.emplace(pattern, std::regex(pattern)).first;
  return it->second;
}

std::string cname(const Object& o) { return color_name(o.color); }
std::string sname(const Object& o) { return shape_name(o.shape); }

int find_by_color(const Scene& s, const std::string& c) {
  for (size_t i = 0; i < s.objects.size(); ++i)
    if (cname(s.objects[i]) == c) return static_cast<int>(i);
  return -1;
}
int find_named(const Scene& s, const std::string& c, const std::string& sh) {
  const int i = find_by_color(s, c);
  return i >= 0 && sname(s.objects[i]) == sh ? i : -1;
}

double dist(const Object& a, const Object& b) { return std::hypot(double(a.cx - b.cx), double(a.cy - b.cy)); }

// Others sorted by distance to ref: (squared distance, index).
std::vector<std::pair<long, int>> by_distance(const Scene& s, int ref) {
  std::vector<std::pair<long, int>> d;
  for (int i = 0; i < static_cast<int>(s.objects.size()); ++i) {
    if (i == ref) continue;
    const long dx = s.objects[i].cx - s.objects[ref].cx, dy = s.objects[i].cy - s.objects[ref].cy;
    d.push_back({dx * dx + dy * dy, i});
  }
  std::sort(d.begin(), d.end());
  return d;
}
struct Extreme {
  int winner;     // -1 if tied
  double gap;     // runner-up distance difference (px)
};
Extreme ref_extreme(const Scene& s, int ref, bool farthest) {
  auto d = by_distance(s, ref);
  if (farthest) std::reverse(d.begin(), d.end());
  if (d.size() < 2) return {d[0].second, 1e9};
  if (d[0].first == d[1].first) return {-1, 0};
  return {d[0].second, std::fabs(std::sqrt(double(d[0].first)) - std::sqrt(double(d[1].first)))};
}

// a REL b with the 12 px rule (y grows downwards).
bool rel_true(const Object& a, const std::string& rel, const Object& b) {
  if (rel == "left of") return b.cx - a.cx >= 12;
  if (rel == "right of") return a.cx - b.cx >= 12;
  if (rel == "above") return b.cy - a.cy >= 12;
  if (rel == "below") return a.cy - b.cy >= 12;
  FAIL("unknown relation " << rel);
  return false;
}

int count_shape(const Scene& s, const std::string& sh) {
  int n = 0;
  for (const Object& o : s.objects) n += sname(o) == sh;
  return n;
}

std::string article(const std::string& w) { return std::string("aeiou").find(w[0]) != std::string::npos ? "an" : "a"; }

// Re-derives the answer to a question from the scene. Also checks the asking rules (ties,
// 12 px, 4 px gap, uniqueness). Returns "" when the text matches no template.
std::string derive_answer(const Scene& s, const std::string& q, const std::string& family) {
  std::smatch m;
  auto shape_of = [&](int i) { return sname(s.objects[i]); };
  if (s.preset == Preset::sort_of_clevr) {
    if (std::regex_match(q, m, re("what is the shape of the (\\w+) object\\?"))) {
      CHECK(family == "U1");
      return shape_of(find_by_color(s, m[1]));
    }
    if (std::regex_match(q, m, re("is the (\\w+) object on the left or right\\?"))) {
      CHECK(family == "U2");
      return s.objects[find_by_color(s, m[1])].cx < 37.5 ? "left" : "right";
    }
    if (std::regex_match(q, m, re("is the (\\w+) object on the top or bottom\\?"))) {
      CHECK(family == "U3");
      return s.objects[find_by_color(s, m[1])].cy < 37.5 ? "top" : "bottom";
    }
    if (std::regex_match(q, m, re("what is the shape of the object (closest to|furthest from) the (\\w+) object\\?"))) {
      const bool far = m[1] == "furthest from";
      CHECK(family == (far ? "B2" : "B1"));
      const int ref = find_by_color(s, m[2]);
      const Extreme e = ref_extreme(s, ref, far);
      CHECK_MESSAGE(e.winner >= 0, "a question resting on an exact distance tie was asked: " << q);
      CHECK(e.winner != ref);
      return e.winner >= 0 ? shape_of(e.winner) : "<tie>";
    }
    if (std::regex_match(q, m, re("how many objects have the same shape as the (\\w+) object\\?"))) {
      CHECK(family == "B3");
      return std::to_string(count_shape(s, shape_of(find_by_color(s, m[1]))));  // the reference counts
    }
    return "";
  }
  if (std::regex_match(q, m, re("is there (a|an) (\\w+) (\\w+)\\?"))) {
    CHECK(family == "exist");
    CHECK(m[1] == article(m[2]));
    return find_named(s, m[2], m[3]) >= 0 ? "yes" : "no";
  }
  if (std::regex_match(q, m, re("how many (circle|square|triangle)s are there\\?"))) {
    CHECK(family == "count");
    return std::to_string(count_shape(s, m[1]));
  }
  if (std::regex_match(q, m, re("how many (\\w+) objects are there\\?"))) {
    CHECK(family == "count");
    return find_by_color(s, m[1]) >= 0 ? "1" : "0";
  }
  if (std::regex_match(q, m, re("what color is the (circle|square|triangle)\\?"))) {
    CHECK(family == "query");
    CHECK_MESSAGE(count_shape(s, m[1]) == 1, "query about a non-unique reference: " << q);
    for (const Object& o : s.objects)
      if (sname(o) == m[1]) return cname(o);
    return "<none>";
  }
  if (std::regex_match(q, m, re("what shape is the (\\w+) object\\?"))) {
    CHECK(family == "query");
    const int i = find_by_color(s, m[1]);
    REQUIRE(i >= 0);
    return shape_of(i);
  }
  if (std::regex_match(q, m, re("what size is the (\\w+) (\\w+)\\?"))) {
    CHECK(family == "query");
    const int i = find_named(s, m[1], m[2]);
    REQUIRE(i >= 0);
    return s.objects[i].r == 14 ? "large" : "small";
  }
  if (std::regex_match(q, m, re("is the (\\w+) (\\w+) (left of|right of|above|below) the (\\w+) (\\w+)\\?"))) {
    CHECK(family == "relate");
    const int a = find_named(s, m[1], m[2]), b = find_named(s, m[4], m[5]);
    REQUIRE(a >= 0);
    REQUIRE(b >= 0);
    const bool x_axis = m[3] == "left of" || m[3] == "right of";
    const int diff = x_axis ? std::abs(s.objects[a].cx - s.objects[b].cx) : std::abs(s.objects[a].cy - s.objects[b].cy);
    CHECK_MESSAGE(diff >= 12, "relation question with centres " << diff << " px apart: " << q);
    return rel_true(s.objects[a], m[3], s.objects[b]) ? "yes" : "no";
  }
  if (std::regex_match(q, m, re("what color is the object (closest to|farthest from) the (\\w+) (\\w+)\\?"))) {
    CHECK(family == "relate");
    const int ref = find_named(s, m[2], m[3]);
    REQUIRE(ref >= 0);
    const Extreme e = ref_extreme(s, ref, m[1] == "farthest from");
    REQUIRE(e.winner >= 0);
    CHECK_MESSAGE(e.gap >= 4.0, "superlative question with a runner-up gap of " << e.gap << " px: " << q);
    CHECK(e.winner != ref);
    return cname(s.objects[e.winner]);
  }
  if (std::regex_match(q, m, re("are there more (circle|square|triangle)s than (circle|square|triangle)s\\?"))) {
    CHECK(family == "compare");
    CHECK(m[1] != m[2]);
    return count_shape(s, m[1]) > count_shape(s, m[2]) ? "yes" : "no";  // equal counts: no
  }
  return "";
}

std::string expected_count_caption(const Scene& s) {
  std::vector<std::string> items;
  int first = -1;
  for (const char* sh : {"circle", "square", "triangle"}) {
    const int n = count_shape(s, sh);
    if (n == 0) continue;
    if (first < 0) first = n;
    items.push_back(std::string(kNumberWords[n]) + " " + sh + (n > 1 ? "s" : ""));
  }
  std::string out = first == 1 ? "there is " : "there are ";
  for (size_t i = 0; i < items.size(); ++i)
    out += (i == 0 ? "" : i + 1 == items.size() ? " and " : ", ") + items[i];
  return out + ".";
}

std::string expected_inventory(const Scene& s) {
  std::vector<Object> v = s.objects;
  std::stable_sort(v.begin(), v.end(), [](const Object& a, const Object& b) {
    return a.cx < b.cx || (a.cx == b.cx && a.cy < b.cy);
  });
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    std::string words = (s.preset == Preset::shapes ? std::string(v[i].r == 14 ? "large " : "small ") : "") + cname(v[i]) + " " + sname(v[i]);
    out += (i == 0 ? "" : i + 1 == v.size() ? " and " : ", ") + article(words) + " " + words;
  }
  return out + ".";
}

bool any_superlative(const Scene& s) {
  for (int ref = 0; ref < static_cast<int>(s.objects.size()); ++ref)
    for (bool far : {false, true}) {
      const Extreme e = ref_extreme(s, ref, far);
      if (e.winner >= 0 && e.gap >= 4.0) return true;
    }
  return false;
}

// Checks one relation/superlative caption against the scene; returns "relation"/"superlative".
std::string check_sentence_caption(const Scene& s, const std::string& c) {
  std::smatch m;
  if (std::regex_match(c, m, re("the (\\w+) (\\w+) is (left of|right of|above|below) the (\\w+) (\\w+)\\."))) {
    const int a = find_named(s, m[1], m[2]), b = find_named(s, m[4], m[5]);
    REQUIRE(a >= 0);
    REQUIRE(b >= 0);
    CHECK_MESSAGE(rel_true(s.objects[a], m[3], s.objects[b]), "false relation caption: " << c);
    return "relation";
  }
  if (std::regex_match(c, m, re("the (\\w+) (\\w+) is (closest to|farthest from) the (\\w+) (\\w+)\\."))) {
    const int w = find_named(s, m[1], m[2]), ref = find_named(s, m[4], m[5]);
    REQUIRE(w >= 0);
    REQUIRE(ref >= 0);
    const Extreme e = ref_extreme(s, ref, m[3] == "farthest from");
    CHECK_MESSAGE(e.winner == w, "false superlative caption: " << c);
    CHECK_MESSAGE(e.gap >= 4.0, "superlative caption with a runner-up gap of " << e.gap << ": " << c);
    return "superlative";
  }
  FAIL("caption matches no sentence template: " << c);
  return "";
}

struct Generated {
  Scene scene;
  std::vector<std::string> captions;
  std::vector<Question> questions;
};
Generated gen(Preset p, uint64_t seed, int64_t id) {
  Generated g{generate_scene(p, seed, id), {}, {}};
  Rng cr(image_key(p, seed, id, 1)), qr(image_key(p, seed, id, 2));
  g.captions = make_captions(g.scene, cr);
  g.questions = make_questions(g.scene, qr);
  return g;
}

Object obj(Color c, Shape s, int cx, int cy, Size z = Size::small) {
  Object o;
  o.color = c, o.shape = s, o.cx = cx, o.cy = cy, o.size = z, o.r = z == Size::large ? 14 : 8;
  return o;
}
Scene scene_of(Preset p, std::vector<Object> objs) {
  Scene s;
  s.preset = p;
  s.width = s.height = p == Preset::shapes ? 128 : 75;
  s.objects = std::move(objs);
  return s;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
TEST_CASE("rng: splitmix64 reference values, unbiased bounded draws") {
  Rng r(0);  // the published splitmix64 sequence for seed 0
  CHECK(r.next() == 0xe220a8397b1dcdafull);
  CHECK(r.next() == 0x6e789e6aa1b965f4ull);
  CHECK(r.next() == 0x06c45d188009454full);
  Rng a(7);
  std::vector<int> hist(7, 0);
  for (int i = 0; i < 70000; ++i) {
    const int v = a.uniform_int(3, 9);
    REQUIRE(v >= 3);
    REQUIRE(v <= 9);
    ++hist[v - 3];
  }
  for (int h : hist) CHECK(std::abs(h - 10000) < 500);  // ~5 sigma
  CHECK_THROWS_AS(a.uniform_int(2, 1), InternalError);
}

TEST_CASE("captions: the spec's grammar examples") {
  CHECK(number_word(2) == "two");
  CHECK(with_article("orange square") == "an orange square");
  CHECK(with_article("large red circle") == "a large red circle");
  Scene s = scene_of(Preset::shapes, {obj(Color::red, Shape::circle, 20, 20), obj(Color::blue, Shape::square, 60, 20),
                                      obj(Color::green, Shape::triangle, 100, 20), obj(Color::gray, Shape::circle, 60, 80)});
  CHECK(count_caption(s) == "there are two circles, one square and one triangle.");
  Scene t = scene_of(Preset::shapes, {obj(Color::red, Shape::square, 20, 20), obj(Color::blue, Shape::circle, 60, 20),
                                      obj(Color::green, Shape::square, 100, 20)});
  CHECK(count_caption(t) == "there is one circle and two squares.");
  Scene u = scene_of(Preset::shapes, {obj(Color::green, Shape::triangle, 100, 50, Size::large),
                                      obj(Color::red, Shape::circle, 20, 60, Size::large),
                                      obj(Color::blue, Shape::square, 60, 50, Size::small)});
  CHECK(inventory_caption(u) == "a large red circle, a small blue square and a large green triangle.");
  // equal x: top to bottom; sort-of-clevr has no sizes; "an orange"
  Scene v = scene_of(Preset::sort_of_clevr, {obj(Color::red, Shape::circle, 30, 60), obj(Color::orange, Shape::square, 30, 10)});
  CHECK(inventory_caption(v) == "an orange square and a red circle.");
  CHECK(relation_caption(u.objects[1], Rel::left_of, u.objects[2]) == "the red circle is left of the blue square.");
  CHECK(superlative_caption(u.objects[0], false, u.objects[1]) == "the green triangle is closest to the red circle.");
  CHECK(superlative_caption(u.objects[0], true, u.objects[1]) == "the green triangle is farthest from the red circle.");
  Scene w = scene_of(Preset::shapes, {obj(Color::red, Shape::triangle, 20, 20), obj(Color::blue, Shape::triangle, 60, 20),
                                      obj(Color::green, Shape::triangle, 100, 20)});
  CHECK(count_caption(w) == "there are three triangles.");
}

TEST_CASE("geometry: closest/farthest exclude the reference, ties and the 4 px gap") {
  // The reference is at distance 0 from itself; a sentinel-style bug would return it.
  Scene s = scene_of(Preset::sort_of_clevr, {obj(Color::red, Shape::circle, 30, 30), obj(Color::green, Shape::square, 45, 30),
                                             obj(Color::blue, Shape::square, 30, 60)});
  CHECK(extreme_object(s, 0, false, 0.0) == 1);
  CHECK(extreme_object(s, 0, true, 0.0) == 2);
  CHECK(extreme_object(s, 1, false, 0.0) == 0);
  // exact tie: green and blue both 15 px from red
  Scene t = scene_of(Preset::sort_of_clevr, {obj(Color::red, Shape::circle, 30, 30), obj(Color::green, Shape::square, 45, 30),
                                             obj(Color::blue, Shape::square, 30, 45), obj(Color::gray, Shape::square, 60, 60)});
  CHECK(extreme_object(t, 0, false, 0.0) == -1);
  CHECK(extreme_object(t, 0, true, 0.0) == 3);
  // gap rule: 20 vs 23 px -> not asked with a 4 px gap, asked with none; 20 vs 24 -> asked
  Scene u = scene_of(Preset::shapes, {obj(Color::red, Shape::circle, 60, 60), obj(Color::green, Shape::circle, 80, 60),
                                      obj(Color::blue, Shape::circle, 60, 83)});
  CHECK(extreme_object(u, 0, false, 4.0) == -1);
  CHECK(extreme_object(u, 0, false, 0.0) == 1);
  u.objects[2].cy = 84;
  CHECK(extreme_object(u, 0, false, 4.0) == 1);
  CHECK(relation_holds(u.objects[0], Rel::left_of, u.objects[1]));
  u.objects[1].cx = 71;  // 11 px: too close to call
  CHECK_FALSE(relation_holds(u.objects[0], Rel::left_of, u.objects[1]));
  CHECK_FALSE(relation_holds(u.objects[1], Rel::right_of, u.objects[0]));
  CHECK(relation_holds(u.objects[0], Rel::above, u.objects[2]));  // y grows downwards
}

TEST_CASE("sort-of-clevr: scenes follow the spec") {
  std::map<std::string, int> shapes;
  for (int64_t id = 0; id < 1500; ++id) {
    const Scene s = generate_scene(Preset::sort_of_clevr, 11, id);
    REQUIRE(s.width == 75);
    REQUIRE(s.height == 75);
    CHECK(s.background == 255);
    CHECK(s.file_name == image_file_name(id));
    REQUIRE(s.objects.size() == 6);
    const char* order[] = {"red", "green", "blue", "orange", "gray", "yellow"};
    for (int i = 0; i < 6; ++i) {
      const Object& o = s.objects[i];
      CHECK(cname(o) == order[i]);
      CHECK((o.shape == Shape::square || o.shape == Shape::circle));
      CHECK(o.r == 5);
      CHECK(o.size == Size::small);
      CHECK((o.cx >= 5 && o.cx < 70 && o.cy >= 5 && o.cy < 70));
      for (int j = 0; j < i; ++j) CHECK(dist(o, s.objects[j]) >= 10.0);
      ++shapes[sname(o)];
    }
  }
  CHECK(std::abs(shapes["square"] - 4500) < 300);  // p = 1/2 over 9000 objects
}

TEST_CASE("shapes: scenes follow the spec (counts, colours, sizes, bounds, non-overlap)") {
  std::set<int> ns, bgs;
  std::map<std::string, int> shapes;
  for (int64_t id = 0; id < 1500; ++id) {
    const Scene s = generate_scene(Preset::shapes, 5, id);
    REQUIRE(s.width == 128);
    REQUIRE(s.height == 128);
    CHECK((s.background >= 200 && s.background <= 255));
    bgs.insert(s.background);
    const int n = static_cast<int>(s.objects.size());
    CHECK((n >= 3 && n <= 6));
    ns.insert(n);
    std::set<std::string> colors;
    for (int i = 0; i < n; ++i) {
      const Object& o = s.objects[i];
      colors.insert(cname(o));
      ++shapes[sname(o)];
      CHECK(o.r == (o.size == Size::large ? 14 : 8));
      // the geometric outline within [2, 125] on both axes
      double x0, x1, y0, y1;
      if (o.shape == Shape::triangle) {
        const double h = o.r * std::sqrt(3.0) / 2.0;
        x0 = o.cx - h, x1 = o.cx + h, y0 = o.cy - o.r, y1 = o.cy + o.r / 2.0;
      } else {
        x0 = o.cx - o.r, x1 = o.cx + o.r, y0 = o.cy - o.r, y1 = o.cy + o.r;
      }
      CHECK_MESSAGE((x0 >= 2 && x1 <= 125 && y0 >= 2 && y1 <= 125), "image " << id << " object " << i << " out of bounds");
      for (int j = 0; j < i; ++j) {
        const Object& p = s.objects[j];
        const double ra = o.shape == Shape::square ? o.r * std::sqrt(2.0) : o.r;
        const double rb = p.shape == Shape::square ? p.r * std::sqrt(2.0) : p.r;
        CHECK_MESSAGE(dist(o, p) >= ra + rb + 4.0 - 1e-9, "image " << id << ": objects " << i << " and " << j << " overlap");
      }
    }
    CHECK(colors.size() == s.objects.size());  // distinct colours
  }
  CHECK(ns == std::set<int>{3, 4, 5, 6});
  CHECK(bgs.size() == 56);  // every grey level in [200, 255] appears
  CHECK(shapes.size() == 3);
}

TEST_CASE("rendering: colours, hard edges for sort-of-clevr, anti-aliased shapes with the right area") {
  // sort-of-clevr: an isolated square covers exactly 121 pixels, a circle of radius 5 covers 81.
  int checked = 0;
  for (int64_t id = 0; id < 40; ++id) {
    const Scene s = generate_scene(Preset::sort_of_clevr, 3, id);
    const auto img = render_rgb(s);
    REQUIRE(img.size() == 75u * 75u * 3u);
    std::set<std::array<int, 3>> palette;
    for (size_t i = 0; i < img.size(); i += 3) palette.insert({img[i], img[i + 1], img[i + 2]});
    CHECK(palette.size() <= 7);  // white + 6 colours: no anti-aliasing
    for (size_t k = 0; k < s.objects.size(); ++k) {
      const Object& o = s.objects[k];
      bool isolated = true;
      for (size_t j = 0; j < s.objects.size(); ++j) isolated = isolated && (j == k || dist(o, s.objects[j]) > 16);
      if (!isolated) continue;
      const auto rgb = kRgb.at(cname(o));
      int n = 0;
      for (int y = o.cy - 6; y <= o.cy + 6; ++y)
        for (int x = o.cx - 6; x <= o.cx + 6; ++x) {
          if (x < 0 || y < 0 || x >= 75 || y >= 75) continue;
          const uint8_t* p = &img[(y * 75 + x) * 3];
          n += p[0] == rgb[0] && p[1] == rgb[1] && p[2] == rgb[2];
        }
      CHECK(n == (o.shape == Shape::square ? 121 : 81));
      ++checked;
    }
  }
  CHECK(checked > 50);
  // shapes: coverage (alpha recovered from the pixels) integrates to the geometric area.
  double max_rel_err = 0;
  int partial = 0;
  for (int64_t id = 0; id < 30; ++id) {
    const Scene s = generate_scene(Preset::shapes, 3, id);
    const auto img = render_rgb(s);
    CHECK(img[0] == s.background);  // corner pixel: background
    for (const Object& o : s.objects) {
      const auto rgb = kRgb.at(cname(o));
      int ch = 0;  // the channel where the colour differs most from the background
      for (int c = 1; c < 3; ++c)
        if (std::abs(rgb[c] - s.background) > std::abs(rgb[ch] - s.background)) ch = c;
      const double span = rgb[ch] - s.background;
      if (std::abs(span) < 60) continue;
      const uint8_t* centre = &img[(o.cy * 128 + o.cx) * 3];
      CHECK((centre[0] == rgb[0] && centre[1] == rgb[1] && centre[2] == rgb[2]));
      // Integrate within extent + 2 px of the centre: the object's own fringe ends within
      // extent + 0.71 and a neighbour's outline starts at extent + 4 or more.
      const double R = o.shape == Shape::square ? o.r * std::sqrt(2.0) : o.r;
      double area = 0;
      for (int y = o.cy - o.r - 8; y <= o.cy + o.r + 8; ++y)
        for (int x = o.cx - o.r - 8; x <= o.cx + o.r + 8; ++x) {
          if (x < 0 || y < 0 || x >= 128 || y >= 128 || std::hypot(x - o.cx, y - o.cy) > R + 2) continue;
          const double a = (img[(y * 128 + x) * 3 + ch] - s.background) / span;
          area += a;
          partial += a > 0.05 && a < 0.95;
        }
      const double r = o.r;
      const double want = o.shape == Shape::circle ? M_PI * r * r
                          : o.shape == Shape::square ? 4 * r * r
                                                     : 3 * std::sqrt(3.0) / 4 * r * r;
      max_rel_err = std::max(max_rel_err, std::fabs(area - want) / want);
    }
  }
  MESSAGE("shapes: max relative area error of the anti-aliased rendering " << max_rel_err);
  CHECK(max_rel_err < 0.02);
  CHECK(partial > 100);  // anti-aliased edges exist
}

TEST_CASE("captions: 5 per image, each one true and built as the spec says") {
  for (Preset p : {Preset::sort_of_clevr, Preset::shapes}) {
    int superlatives = 0, third_relations = 0;
    for (int64_t id = 0; id < 400; ++id) {
      const Generated g = gen(p, 21, id);
      REQUIRE(g.captions.size() == 5);
      CHECK(g.captions[0] == expected_count_caption(g.scene));
      CHECK(g.captions[1] == expected_inventory(g.scene));
      CHECK(check_sentence_caption(g.scene, g.captions[2]) == "relation");
      CHECK(check_sentence_caption(g.scene, g.captions[3]) == "relation");
      const std::string last = check_sentence_caption(g.scene, g.captions[4]);
      CHECK(last == (any_superlative(g.scene) ? "superlative" : "relation"));
      (last == "superlative" ? superlatives : third_relations)++;
      CHECK(std::set<std::string>(g.captions.begin(), g.captions.end()).size() == 5);
      for (const auto& c : g.captions) {
        CHECK(c.back() == '.');
        CHECK(std::none_of(c.begin(), c.end(), [](char ch) { return std::isupper(static_cast<unsigned char>(ch)); }));
      }
    }
    MESSAGE(std::string(preset_name(p)) << ": " << superlatives << " superlative and " << third_relations << " third-relation captions");
    CHECK(superlatives > 300);
  }
}

TEST_CASE("sort-of-clevr questions: 10 + 10, no repeats, answers re-derived, ties never asked") {
  int tie_refs = 0, b_questions = 0;
  std::map<std::string, int> families;
  for (int64_t id = 0; id < 1500; ++id) {
    const Generated g = gen(Preset::sort_of_clevr, 9, id);
    REQUIRE(g.questions.size() == 20);
    CHECK(questions_per_image(Preset::sort_of_clevr) == 20);
    std::set<std::string> seen;
    for (size_t k = 0; k < 20; ++k) {
      const Question& q = g.questions[k];
      CHECK(seen.insert(q.question).second);
      CHECK(q.family[0] == (k < 10 ? 'U' : 'B'));
      ++families[q.family];
      CHECK(q.answer_type == (q.family == "B3" ? "number" : "other"));
      CHECK_MESSAGE(derive_answer(g.scene, q.question, q.family) == q.answer, "image " << id << ": " << q.question);
    }
    // A reference whose closest/furthest is tied must have no B1/B2 question.
    for (int ref = 0; ref < 6; ++ref)
      for (bool far : {false, true})
        if (ref_extreme(g.scene, ref, far).winner < 0) {
          ++tie_refs;
          const std::string text = std::string("what is the shape of the object ") + (far ? "furthest from" : "closest to") +
                                   " the " + cname(g.scene.objects[ref]) + " object?";
          CHECK(seen.count(text) == 0);
        }
    b_questions += 10;
  }
  MESSAGE("sort-of-clevr: " << tie_refs << " tied (reference, closest|furthest) cases were skipped");
  CHECK(tie_refs > 0);  // the rule was exercised
  // subtypes drawn uniformly: each of U1..U3 ~ 1/3 of 15000
  for (const char* f : {"U1", "U2", "U3"}) CHECK(std::abs(families[f] - 5000) < 300);
}

TEST_CASE("shapes questions: 2 per family, answers re-derived, balanced within families") {
  std::map<std::string, std::map<std::string, int>> answers;
  int count_pairs_distinct = 0, count_pairs = 0;
  for (int64_t id = 0; id < 1500; ++id) {
    const Generated g = gen(Preset::shapes, 4, id);
    REQUIRE(g.questions.size() == 10);
    const char* fam[] = {"exist", "count", "query", "relate", "compare"};
    std::set<std::string> seen;
    for (size_t k = 0; k < 10; ++k) {
      const Question& q = g.questions[k];
      CHECK(q.family == fam[k / 2]);
      CHECK(seen.insert(q.question).second);
      const std::string want = derive_answer(g.scene, q.question, q.family);
      CHECK_MESSAGE(want == q.answer, "image " << id << ": " << q.question << " -> " << q.answer << " (expected " << want << ")");
      const bool yn = q.answer == "yes" || q.answer == "no";
      const bool num = !q.answer.empty() && std::isdigit(static_cast<unsigned char>(q.answer[0]));
      CHECK(q.answer_type == (yn ? "yes/no" : num ? "number" : "other"));
      ++answers[q.family][q.answer];
    }
    // exist: one yes and one no in every image
    CHECK(g.questions[0].answer != g.questions[1].answer);
    // compare: yes and no whenever some shape count differs from another
    const int c = count_shape(g.scene, "circle"), s = count_shape(g.scene, "square"), t = count_shape(g.scene, "triangle");
    if (!(c == s && s == t)) CHECK(g.questions[8].answer != g.questions[9].answer);
    ++count_pairs;
    count_pairs_distinct += g.questions[2].answer != g.questions[3].answer;
  }
  CHECK(answers["exist"]["yes"] == answers["exist"]["no"]);
  const double relate_yes = answers["relate"]["yes"], relate_no = answers["relate"]["no"];
  MESSAGE("relate yes/no: " << relate_yes << "/" << relate_no << ", compare yes/no: " << answers["compare"]["yes"] << "/"
                            << answers["compare"]["no"] << ", count pairs with two different answers: " << count_pairs_distinct
                            << "/" << count_pairs);
  CHECK(std::fabs(relate_yes - relate_no) / (relate_yes + relate_no) < 0.06);
  CHECK(count_pairs_distinct > 0.9 * count_pairs);
  for (int k = 0; k <= 4; ++k) CHECK(answers["count"][std::to_string(k)] > 0);
}

TEST_CASE("determinism: same seed -> same scenes, text and PNG bytes; different seed -> different") {
  for (Preset p : {Preset::sort_of_clevr, Preset::shapes}) {
    for (int64_t id : {0, 1, 77}) {
      const Generated a = gen(p, 123, id), b = gen(p, 123, id), c = gen(p, 124, id);
      CHECK(a.captions == b.captions);
      REQUIRE(a.questions.size() == b.questions.size());
      for (size_t k = 0; k < a.questions.size(); ++k) CHECK(a.questions[k].question == b.questions[k].question);
      const std::string pa = encode_png(a.scene), pb = encode_png(b.scene), pc = encode_png(c.scene);
      CHECK(pa == pb);
      CHECK(pa != pc);
      CHECK(pa.substr(1, 3) == "PNG");
    }
  }
  // Golden value over the scenes, captions and questions of the first 30 images of both
  // presets: a change here changes every dataset, so bump kGeneratorVersion when intended.
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  auto feed = [&h](const std::string& text) {
    for (unsigned char ch : text) h = (h ^ ch) * 1099511628211ull;
  };
  for (Preset p : {Preset::sort_of_clevr, Preset::shapes})
    for (int64_t id = 0; id < 30; ++id) {
      const Generated g = gen(p, 0, id);
      std::ostringstream os;
      os << g.scene.background << ';';
      for (const Object& o : g.scene.objects) os << cname(o) << ' ' << sname(o) << ' ' << o.r << ' ' << o.cx << ' ' << o.cy << ';';
      feed(os.str());
      for (const auto& c : g.captions) feed(c);
      for (const auto& q : g.questions) feed(q.question + "|" + q.answer + "|" + q.family + "|" + q.answer_type);
    }
  MESSAGE("golden generator hash: " << h);
  CHECK(h == 17517376222574913534ull);
  CHECK(kGeneratorVersion == 1);
}

TEST_CASE("write_dataset: files, ids, byte-identical reruns, prefix property, scenes.json round trip") {
  namespace fs = std::filesystem;
  const fs::path tmp = fs::temp_directory_path() / ("xmodal_test_scenes_" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  auto slurp = [](const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
  };
  for (Preset p : {Preset::sort_of_clevr, Preset::shapes}) {
    SynthOptions o;
    o.preset = p;
    o.seed = 42;
    o.images = 12;
    o.out = (tmp / "a").string();
    int64_t progress = 0;
    const SynthSummary sum = write_dataset(o, [&](int64_t n) {
#pragma omp atomic
      progress += n;
    });
    CHECK(progress == 12);
    CHECK(sum.images == 12);
    CHECK(sum.captions == 60);
    CHECK(sum.questions == 12 * questions_per_image(p));
    o.out = (tmp / "b").string();
    write_dataset(o);
    o.out = (tmp / "small").string();
    o.images = 5;
    write_dataset(o);
    o.out = (tmp / "other").string();
    o.images = 12;
    o.seed = 43;
    write_dataset(o);
    for (const char* f : {"scenes.json", "captions.json", "questions.json", "annotations.json", "images/000011.png"}) {
      CHECK_MESSAGE(slurp(tmp / "a" / f) == slurp(tmp / "b" / f), f);
      CHECK_MESSAGE(slurp(tmp / "a" / f) != slurp(tmp / "other" / f), f);
    }
    for (int i = 0; i < 5; ++i) CHECK(slurp(tmp / "a" / "images" / image_file_name(i)) == slurp(tmp / "small" / "images" / image_file_name(i)));
    CHECK_FALSE(fs::exists(tmp / "a" / "images" / "000012.png"));

    const ScenesFile sf = read_scenes_file((tmp / "a" / "scenes.json").string());
    CHECK(sf.preset == p);
    CHECK(sf.seed == 42);
    CHECK(sf.generator_version == kGeneratorVersion);
    REQUIRE(sf.scenes.size() == 12);
    for (int64_t i = 0; i < 12; ++i) {
      const Scene want = generate_scene(p, 42, i);
      const Scene& got = sf.scenes[i];
      CHECK(got.image_id == i);
      CHECK(got.file_name == want.file_name);
      CHECK(got.background == want.background);
      REQUIRE(got.objects.size() == want.objects.size());
      for (size_t k = 0; k < got.objects.size(); ++k) {
        CHECK(got.objects[k].color == want.objects[k].color);
        CHECK(got.objects[k].shape == want.objects[k].shape);
        CHECK(got.objects[k].size == want.objects[k].size);
        CHECK(got.objects[k].cx == want.objects[k].cx);
        CHECK(got.objects[k].cy == want.objects[k].cy);
        CHECK(got.objects[k].r == want.objects[k].r);
      }
    }
    // question ids image_id*1000 + k and 10 identical answers
    const std::string ann = slurp(tmp / "a" / "annotations.json");
    CHECK(ann.find("\"question_id\":11009") != std::string::npos);
    fs::remove_all(tmp);
  }
}

TEST_CASE("read_scenes: bad files are input errors naming the place") {
  namespace fs = std::filesystem;
  const fs::path tmp = fs::temp_directory_path() / ("xmodal_test_scenes_bad_" + std::to_string(::getpid()) + ".json");
  auto write = [&](const std::string& text) { std::ofstream(tmp) << text; };
  auto message = [&]() -> std::string {
    try {
      read_scenes(tmp.string());
    } catch (const InputError& e) {
      return e.what();
    }
    return "<no error>";
  };
  const std::string head = R"({"generator":"xmodal synth","generator_version":1,"preset":"shapes","seed":0,"scenes":[)";
  write(head + R"({"image_id":0,"file_name":"000000.png","width":128,"height":128,"objects":[{"color":"pink","shape":"circle","size":"small","cx":10,"cy":10,"r":8}]}]})");
  CHECK(message().find("scenes[0].objects[0]: unknown color 'pink'") != std::string::npos);
  write(head + R"({"image_id":0,"file_name":"a.png","width":128,"height":128,"objects":[]},{"image_id":0,"file_name":"b.png","width":128,"height":128,"objects":[]}]})");
  CHECK(message().find("duplicate image_id 0") != std::string::npos);
  write(head + R"({"image_id":0,"file_name":"a.png","width":128,"height":128,"objects":[{"color":"red","shape":"circle","size":"small","cx":500,"cy":10,"r":8}]}]})");
  CHECK(message().find("'cx' = 500 is outside [0, 127]") != std::string::npos);
  write("{\"preset\": \"shapes\",");
  CHECK(message().find("invalid JSON") != std::string::npos);
  write(R"({"generator_version":1,"preset":"clevr","seed":0,"scenes":[]})");
  CHECK(message().find("unknown preset 'clevr'") != std::string::npos);
  fs::remove(tmp);
}
