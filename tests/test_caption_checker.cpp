// Caption checker: reference captions are all true, corrupted ones are false, others do not
// parse; the report's three rates match hand-computed values.
#include <doctest/doctest.h>

#include "core/error.hpp"
#include "pipeline/caption_checker.hpp"

using namespace xmodal;
using namespace xmodal::scenes;

namespace {

Object obj(Color c, Shape s, int cx, int cy, Size z = Size::small) {
  Object o;
  o.color = c, o.shape = s, o.cx = cx, o.cy = cy, o.size = z, o.r = z == Size::large ? 14 : 8;
  return o;
}

// red circle (20,20) small, blue square (60,20) large, green triangle (100,90) small,
// gray circle (60,100) small.
Scene hand_scene() {
  Scene s;
  s.preset = Preset::shapes;
  s.image_id = 7;
  s.width = s.height = 128;
  s.objects = {obj(Color::red, Shape::circle, 20, 20), obj(Color::blue, Shape::square, 60, 20, Size::large),
               obj(Color::green, Shape::triangle, 100, 90), obj(Color::gray, Shape::circle, 60, 100)};
  return s;
}

}  // namespace

TEST_CASE("checker: the spec's template forms parse and are true of a hand-made scene") {
  const Scene s = hand_scene();
  struct Case {
    const char* caption;
    const char* kind;
    int props;
    int true_props;
    std::vector<int> mentioned;
  };
  const Case cases[] = {
      {"there are two circles, one square and one triangle.", "count", 3, 3, {}},
      {"there is one square, two circles and one triangle.", "count", 3, 3, {}},
      {"there are three circles and one square.", "count", 2, 1, {}},  // circles: 2, not 3
      {"a small red circle, a large blue square, a small gray circle and a small green triangle.", "inventory", 4, 4, {0, 1, 2, 3}},
      {"a red circle and an orange square.", "inventory", 2, 1, {0}},     // no orange square
      {"a large red circle.", "inventory", 1, 0, {0}},                     // red circle is small: false, but mentioned
      {"the red circle is left of the blue square.", "relation", 1, 1, {0, 1}},
      {"the blue square is right of the red circle.", "relation", 1, 1, {0, 1}},
      {"the red circle is above the gray circle.", "relation", 1, 1, {0, 3}},
      {"the red circle is right of the blue square.", "relation", 1, 0, {0, 1}},   // corrupted direction
      {"the red circle is left of the blue circle.", "relation", 1, 0, {0}},       // no blue circle
      {"the blue square is left of the gray circle.", "relation", 1, 0, {1, 3}},   // same x: not by 12 px
      {"the blue square is closest to the red circle.", "superlative", 1, 1, {0, 1}},
      {"the green triangle is farthest from the red circle.", "superlative", 1, 1, {0, 2}},
      {"the green triangle is furthest from the red circle.", "superlative", 1, 1, {0, 2}},
      {"the gray circle is closest to the red circle.", "superlative", 1, 0, {0, 3}},
      {"The Red Circle is left of the blue square", "relation", 1, 1, {0, 1}},  // case, no final '.'
  };
  for (const Case& c : cases) {
    const CaptionCheck r = check_caption(s, c.caption);
    INFO(c.caption);
    CHECK(r.parsed);
    CHECK(r.error == "");
    CHECK(r.kind == c.kind);
    CHECK(r.propositions == c.props);
    CHECK(r.true_propositions == c.true_props);
    CHECK(r.false_propositions.size() == static_cast<size_t>(c.props - c.true_props));
    CHECK(r.mentioned == c.mentioned);
  }
  // the superlative's 4 px runner-up gap: red(20,20) -> blue(60,20) is 40 px; put gray 42 px away
  Scene t = s;
  t.objects[3] = obj(Color::gray, Shape::circle, 20, 62);
  CHECK(check_caption(t, "the blue square is closest to the red circle.").true_propositions == 0);
  t.objects[3].cy = 64;
  CHECK(check_caption(t, "the blue square is closest to the red circle.").true_propositions == 1);
}

TEST_CASE("checker: unparsable captions are parse failures with a reason") {
  const Scene s = hand_scene();
  struct Case {
    const char* caption;
    const char* error_part;
  };
  const Case cases[] = {
      {"a dog sitting on a bench.", "got 'dog'"},
      {"", "empty caption"},
      {"there are two circles. there is one square.", "more than one sentence"},
      {"the red circle is near the blue square.", "expected a relation"},
      {"there are many circles.", "expected a number"},
      {"the red circle is left of the blue square and the gray circle.", "expected the end"},
      {"a pink circle.", "got 'pink'"},
      {"red circle is left of blue square", "expected 'there', 'a', 'an' or 'the'"},
  };
  for (const Case& c : cases) {
    const CaptionCheck r = check_caption(s, c.caption);
    INFO(c.caption, " -> ", r.error);
    CHECK_FALSE(r.parsed);
    CHECK(r.propositions == 0);
    CHECK(r.error.find(c.error_part) != std::string::npos);
  }
}

TEST_CASE("checker: every reference caption of both presets parses and is true") {
  for (Preset p : {Preset::sort_of_clevr, Preset::shapes}) {
    std::vector<Scene> scenes;
    std::vector<data::CaptionResult> results;
    for (int64_t id = 0; id < 300; ++id) {
      scenes.push_back(generate_scene(p, 17, id));
      Rng rng(image_key(p, 17, id, 1));
      for (const auto& c : make_captions(scenes.back(), rng)) results.push_back({id, c});
    }
    CaptionCheckReport r = check_captions(scenes, results);
    CHECK(r.captions == 1500);
    CHECK(r.parse_rate == 1.0);
    CHECK(r.truthfulness == 1.0);
    CHECK(r.coverage == 1.0);  // the inventory names every object
    CHECK(r.images == 300);
    CHECK(r.parsed_by_kind["count"] == 300);
    CHECK(r.parsed_by_kind["inventory"] == 300);
    CHECK(r.parsed_by_kind["relation"] + r.parsed_by_kind["superlative"] == 900);

    // Corrupt every relation caption (swap left/right, above/below): all become false.
    std::vector<data::CaptionResult> bad;
    for (auto res : results) {
      std::string& c = res.caption;
      const std::pair<const char*, const char*> swaps[] = {
          {" left of ", " right of "}, {" right of ", " left of "}, {" above ", " below "}, {" below ", " above "}};
      for (const auto& [from, to] : swaps) {
        const auto pos = c.find(from);
        if (pos != std::string::npos) {
          c.replace(pos, std::string(from).size(), to);
          bad.push_back(res);
          break;
        }
      }
    }
    const CaptionCheckReport rb = check_captions(scenes, bad);
    CHECK(rb.parse_rate == 1.0);
    CHECK(rb.truthfulness == 0.0);
  }
}

TEST_CASE("checker: report arithmetic on a hand-made results file") {
  Scene a = hand_scene();  // 4 objects, image 7
  Scene b = hand_scene();
  b.image_id = 8;
  b.objects.resize(3);  // 3 objects, image 8
  Scene c = hand_scene();
  c.image_id = 9;  // no caption: not counted in coverage
  const std::vector<data::CaptionResult> res = {
      {7, "a red circle and an orange square."},            // 2 props, 1 true; mentions red circle
      {7, "the red circle is left of the blue square."},    // 1 prop true; mentions red circle, blue square
      {8, "there are two circles."},                        // 1 prop false (1 circle in b)
      {8, "a cat."},                                        // does not parse
  };
  const CaptionCheckReport r = check_captions({a, b, c}, res);
  CHECK(r.captions == 4);
  CHECK(r.parsed == 3);
  CHECK(r.parse_rate == doctest::Approx(0.75));
  CHECK(r.propositions == 4);
  CHECK(r.true_propositions == 2);
  CHECK(r.truthfulness == doctest::Approx(0.5));
  CHECK(r.images == 2);
  CHECK(r.objects == 7);
  CHECK(r.objects_mentioned == 2);
  CHECK(r.coverage == doctest::Approx(2.0 / 7.0));
  CHECK_THROWS_AS(check_captions({a}, {{99, "a red circle."}}), InputError);
  const CaptionCheckReport empty = check_captions({a}, {});
  CHECK(empty.captions == 0);
  CHECK(empty.parse_rate == 0.0);
}
