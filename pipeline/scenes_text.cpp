// Scenes: reference captions and questions, computed from the scene (see SCENES.md).
#include <algorithm>
#include <array>
#include <map>

#include "core/error.hpp"
#include "pipeline/scenes.hpp"

namespace xmodal::scenes {

// ---------------------------------------------------------------- caption pieces
std::string number_word(int n) {
  static const char* kWords[] = {"zero", "one", "two",   "three", "four",   "five",  "six",
                                 "seven", "eight", "nine", "ten",  "eleven", "twelve"};
  if (n < 0 || n > 12) return std::to_string(n);
  return kWords[n];
}

std::string with_article(const std::string& phrase) {
  const bool vowel = !phrase.empty() && std::string("aeiou").find(phrase[0]) != std::string::npos;
  return (vowel ? "an " : "a ") + phrase;
}

std::string object_name(const Object& o) { return std::string(color_name(o.color)) + " " + shape_name(o.shape); }

namespace {

// "a, b and c" / "a and b" / "a"
std::string join_list(const std::vector<std::string>& items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += i + 1 == items.size() ? " and " : ", ";
    out += items[i];
  }
  return out;
}

std::array<int, 3> shape_counts(const Scene& s) {
  std::array<int, 3> c{0, 0, 0};
  for (const Object& o : s.objects) ++c[static_cast<int>(o.shape)];
  return c;
}

const Object* find_color(const Scene& s, Color c) {
  for (const Object& o : s.objects)
    if (o.color == c) return &o;
  return nullptr;
}

constexpr Rel kRels[4] = {Rel::left_of, Rel::right_of, Rel::above, Rel::below};

}  // namespace

std::string count_caption(const Scene& s) {
  const auto c = shape_counts(s);
  std::vector<std::string> items;
  int first = -1;
  for (int k = 0; k < 3; ++k) {  // order: circle, square, triangle; zeros omitted
    if (c[k] == 0) continue;
    if (first < 0) first = c[k];
    const Shape sh = static_cast<Shape>(k);
    items.push_back(number_word(c[k]) + " " + (c[k] == 1 ? shape_name(sh) : shape_plural(sh)));
  }
  // The verb agrees with the first item.
  return std::string("there ") + (first == 1 ? "is " : "are ") + join_list(items) + ".";
}

std::string inventory_caption(const Scene& s) {
  std::vector<const Object*> order;
  for (const Object& o : s.objects) order.push_back(&o);
  // Left to right; top to bottom at equal x.
  std::sort(order.begin(), order.end(), [](const Object* a, const Object* b) {
    return a->cx != b->cx ? a->cx < b->cx : a->cy < b->cy;
  });
  std::vector<std::string> items;
  for (const Object* o : order) {
    // sort-of-clevr uses the same template without sizes.
    std::string phrase = s.preset == Preset::shapes ? std::string(size_name(o->size)) + " " + object_name(*o)
                                                    : object_name(*o);
    items.push_back(with_article(phrase));
  }
  return join_list(items) + ".";
}

std::string relation_caption(const Object& a, Rel rel, const Object& b) {
  return "the " + object_name(a) + " is " + rel_phrase(rel) + " the " + object_name(b) + ".";
}

std::string superlative_caption(const Object& winner, bool farthest, const Object& ref) {
  return "the " + object_name(winner) + (farthest ? " is farthest from the " : " is closest to the ") +
         object_name(ref) + ".";
}

// Captions: count, inventory, two relations, then one superlative or, when none qualifies
// (4 px runner-up gap), a third relation. The same rules (12 px relations, 4 px superlative
// gap, the word "farthest") apply to both presets: SCENES.md's "no gap rule" and "furthest"
// for sort-of-clevr concern its questions only.
// Relations are drawn uniformly among all that hold; each further relation prefers a pair of
// objects not yet used, then a (pair, axis) not yet used (so "a left of b" is not followed by
// its converse "b right of a" when anything else is available).
std::vector<std::string> make_captions(const Scene& s, Rng& rng) {
  const int n = static_cast<int>(s.objects.size());
  std::vector<std::string> caps{count_caption(s), inventory_caption(s)};

  struct RelCand {
    int a, b;
    Rel rel;
  };
  std::vector<RelCand> rels;
  for (int a = 0; a < n; ++a)
    for (int b = 0; b < n; ++b)
      if (a != b)
        for (Rel r : kRels)
          if (relation_holds(s.objects[a], r, s.objects[b])) rels.push_back({a, b, r});

  struct SupCand {
    int winner, ref;
    bool farthest;
  };
  std::vector<SupCand> sups;
  for (int ref = 0; ref < n; ++ref)
    for (bool far : {false, true}) {
      const int w = extreme_object(s, ref, far, 4.0);
      if (w >= 0) sups.push_back({w, ref, far});
    }

  const int want_rel = sups.empty() ? 3 : 2;
  std::vector<RelCand> chosen;
  auto pair_key = [](const RelCand& c) { return std::minmax(c.a, c.b); };
  auto axis = [](Rel r) { return r == Rel::left_of || r == Rel::right_of ? 0 : 1; };
  for (int k = 0; k < want_rel; ++k) {
    // Preference levels: 0 new pair, 1 new (pair, axis), 2 any not already chosen.
    std::vector<int> best;
    int best_level = 3;
    for (int i = 0; i < static_cast<int>(rels.size()); ++i) {
      const RelCand& c = rels[i];
      int level = 0;
      for (const RelCand& u : chosen) {
        if (u.a == c.a && u.b == c.b && u.rel == c.rel) {
          level = 3;
          break;
        }
        if (pair_key(u) == pair_key(c)) level = std::max(level, axis(u.rel) == axis(c.rel) ? 2 : 1);
      }
      if (level < best_level) best_level = level, best.clear();
      if (level == best_level && level < 3) best.push_back(i);
    }
    check(!best.empty(), "make_captions: not enough relations for image " + std::to_string(s.image_id));
    chosen.push_back(rels[best[rng.below(best.size())]]);
  }
  for (const RelCand& c : chosen) caps.push_back(relation_caption(s.objects[c.a], c.rel, s.objects[c.b]));
  if (!sups.empty()) {
    const SupCand& c = sups[rng.below(sups.size())];
    caps.push_back(superlative_caption(s.objects[c.winner], c.farthest, s.objects[c.ref]));
  }
  return caps;
}

int questions_per_image(Preset p) { return p == Preset::sort_of_clevr ? 20 : 10; }

// ---------------------------------------------------------------- questions
namespace {

std::vector<Question> sort_of_clevr_questions(const Scene& s, Rng& rng) {
  // Candidates: every (colour, subtype) pair; 10 drawn uniformly without replacement from the
  // non-relational ones and 10 from the relational ones that are askable (no exact tie).
  std::vector<Question> nonrel, rel;
  for (Color c : {Color::red, Color::green, Color::blue, Color::orange, Color::gray, Color::yellow}) {
    const Object* o = find_color(s, c);
    check(o != nullptr, "sort-of-clevr scene without a " + std::string(color_name(c)) + " object");
    const int ref = static_cast<int>(o - s.objects.data());
    const std::string the = std::string("the ") + color_name(c) + " object";
    nonrel.push_back({"what is the shape of " + the + "?", shape_name(o->shape), "U1", "other"});
    // left iff x < 37.5, top iff y < 37.5
    nonrel.push_back({"is " + the + " on the left or right?", o->cx < 37.5 ? "left" : "right", "U2", "other"});
    nonrel.push_back({"is " + the + " on the top or bottom?", o->cy < 37.5 ? "top" : "bottom", "U3", "other"});
    // No gap rule here (the paper has none), but exact ties are never asked.
    const int closest = extreme_object(s, ref, false, 0.0);
    if (closest >= 0)
      rel.push_back({"what is the shape of the object closest to " + the + "?", shape_name(s.objects[closest].shape),
                     "B1", "other"});
    const int furthest = extreme_object(s, ref, true, 0.0);
    if (furthest >= 0)
      rel.push_back({"what is the shape of the object furthest from " + the + "?",
                     shape_name(s.objects[furthest].shape), "B2", "other"});
    int same = 0;  // the reference counts itself
    for (const Object& x : s.objects) same += x.shape == o->shape;
    rel.push_back({"how many objects have the same shape as " + the + "?", std::to_string(same), "B3", "number"});
  }
  rng.shuffle(nonrel);
  rng.shuffle(rel);
  check(nonrel.size() >= 10 && rel.size() >= 10, "sort-of-clevr: fewer than 10 askable questions");
  std::vector<Question> out(nonrel.begin(), nonrel.begin() + 10);
  out.insert(out.end(), rel.begin(), rel.begin() + 10);
  return out;
}

struct Cand {
  Question q;
  int subtype;
};

// Picks k distinct questions from one family. Subtypes take turns (in a random order) and,
// within a subtype, the answer is drawn uniformly among the answers not yet given in this
// family (then among all remaining answers), and the question uniformly among those with
// that answer. With two questions this gives one "yes" and one "no" wherever the scene has
// both, and two different counts wherever it can.
std::vector<Question> pick_balanced(std::vector<Cand> cands, int k, Rng& rng) {
  std::vector<int> subtypes;
  for (const Cand& c : cands)
    if (std::find(subtypes.begin(), subtypes.end(), c.subtype) == subtypes.end()) subtypes.push_back(c.subtype);
  std::sort(subtypes.begin(), subtypes.end());
  rng.shuffle(subtypes);
  std::vector<Question> out;
  std::vector<std::string> used_answers;
  for (int i = 0; i < k && !cands.empty(); ++i) {
    // next subtype in turn that still has candidates
    int sub = -1;
    for (size_t t = 0; t < subtypes.size() && sub < 0; ++t) {
      const int st = subtypes[(i + t) % subtypes.size()];
      for (const Cand& c : cands)
        if (c.subtype == st) {
          sub = st;
          break;
        }
    }
    std::vector<std::string> answers, fresh;  // distinct answers, in candidate order
    for (const Cand& c : cands)
      if (c.subtype == sub && std::find(answers.begin(), answers.end(), c.q.answer) == answers.end())
        answers.push_back(c.q.answer);
    for (const auto& a : answers)
      if (std::find(used_answers.begin(), used_answers.end(), a) == used_answers.end()) fresh.push_back(a);
    const auto& pool = fresh.empty() ? answers : fresh;
    const std::string answer = pool[rng.below(pool.size())];
    std::vector<size_t> idx;
    for (size_t j = 0; j < cands.size(); ++j)
      if (cands[j].subtype == sub && cands[j].q.answer == answer) idx.push_back(j);
    const size_t pick = idx[rng.below(idx.size())];
    out.push_back(cands[pick].q);
    used_answers.push_back(answer);
    cands.erase(cands.begin() + static_cast<long>(pick));
  }
  return out;
}

constexpr Color kAllColors[7] = {Color::red,    Color::green,  Color::blue, Color::orange,
                                 Color::purple, Color::yellow, Color::gray};
constexpr Shape kShapes[3] = {Shape::circle, Shape::square, Shape::triangle};

std::vector<Question> shapes_questions(const Scene& s, Rng& rng) {
  const int n = static_cast<int>(s.objects.size());
  const auto counts = shape_counts(s);
  std::vector<Question> out;
  auto add_family = [&](std::vector<Cand> cands) {
    auto picked = pick_balanced(std::move(cands), 2, rng);
    check(picked.size() == 2, "shapes: fewer than 2 questions in a family for image " + std::to_string(s.image_id));
    out.insert(out.end(), picked.begin(), picked.end());
  };
  auto yn = [](bool b) { return std::string(b ? "yes" : "no"); };

  {  // exist: "is there a purple triangle?"
    std::vector<Cand> c;
    for (Color col : kAllColors)
      for (Shape sh : kShapes) {
        bool there = false;
        for (const Object& o : s.objects) there = there || (o.color == col && o.shape == sh);
        c.push_back({{"is there " + with_article(std::string(color_name(col)) + " " + shape_name(sh)) + "?",
                      yn(there), "exist", "yes/no"},
                     0});
      }
    add_family(std::move(c));
  }
  {  // count: by shape (0..6) and by colour (0..1)
    std::vector<Cand> c;
    for (Shape sh : kShapes)
      c.push_back({{std::string("how many ") + shape_plural(sh) + " are there?",
                    std::to_string(counts[static_cast<int>(sh)]), "count", "number"},
                   0});
    for (Color col : kAllColors)
      c.push_back({{std::string("how many ") + color_name(col) + " objects are there?",
                    std::to_string(find_color(s, col) ? 1 : 0), "count", "number"},
                   1});
    add_family(std::move(c));
  }
  {  // query: only where the reference is unique
    std::vector<Cand> c;
    for (Shape sh : kShapes)
      if (counts[static_cast<int>(sh)] == 1)
        for (const Object& o : s.objects)
          if (o.shape == sh)
            c.push_back({{std::string("what color is the ") + shape_name(sh) + "?", color_name(o.color), "query", "other"},
                         0});
    for (const Object& o : s.objects)
      c.push_back({{std::string("what shape is the ") + color_name(o.color) + " object?", shape_name(o.shape), "query",
                    "other"},
                   1});
    for (const Object& o : s.objects)
      c.push_back({{"what size is the " + object_name(o) + "?", size_name(o.size), "query", "other"}, 2});
    add_family(std::move(c));
  }
  {  // relate: positional yes/no (12 px rule on that axis), closest/farthest colour (4 px gap)
    std::vector<Cand> c;
    for (int a = 0; a < n; ++a)
      for (int b = 0; b < n; ++b) {
        if (a == b) continue;
        const Object &A = s.objects[a], &B = s.objects[b];
        for (Rel r : kRels) {
          const bool x_axis = r == Rel::left_of || r == Rel::right_of;
          const int diff = x_axis ? std::abs(A.cx - B.cx) : std::abs(A.cy - B.cy);
          if (diff < 12) continue;
          c.push_back({{"is the " + object_name(A) + " " + rel_phrase(r) + " the " + object_name(B) + "?",
                        yn(relation_holds(A, r, B)), "relate", "yes/no"},
                       0});
        }
      }
    for (int ref = 0; ref < n; ++ref)
      for (bool far : {false, true}) {
        const int w = extreme_object(s, ref, far, 4.0);
        if (w < 0) continue;
        c.push_back({{std::string("what color is the object ") + (far ? "farthest from" : "closest to") + " the " +
                          object_name(s.objects[ref]) + "?",
                      color_name(s.objects[w].color), "relate", "other"},
                     1});
      }
    add_family(std::move(c));
  }
  {  // compare: "are there more circles than squares?"; equal counts answer "no"
    std::vector<Cand> c;
    for (Shape a : kShapes)
      for (Shape b : kShapes)
        if (a != b)
          c.push_back({{std::string("are there more ") + shape_plural(a) + " than " + shape_plural(b) + "?",
                        yn(counts[static_cast<int>(a)] > counts[static_cast<int>(b)]), "compare", "yes/no"},
                       0});
    add_family(std::move(c));
  }
  return out;
}

}  // namespace

std::vector<Question> make_questions(const Scene& s, Rng& rng) {
  return s.preset == Preset::sort_of_clevr ? sort_of_clevr_questions(s, rng) : shapes_questions(s, rng);
}

}  // namespace xmodal::scenes
