// The scenes benchmark (/work/shared/SCENES.md): deterministic 2-D scenes of coloured shapes,
// their pictures, reference captions and questions with exact answers.
//
// Two presets:
//   sort-of-clevr  75x75, white, 6 objects (one per colour), square|circle, no anti-aliasing,
//                  20 questions per image (10 non-relational U1-U3, 10 relational B1-B3).
//   shapes         128x128, light grey, 3-6 objects, circle|square|triangle, small|large,
//                  anti-aliased, 10 questions per image (2 per family).
// Both have 5 captions per image: count, inventory, two relations, one superlative (or a
// third relation when no superlative qualifies).
//
// Determinism: everything is drawn from our own RNG (splitmix64) with our own integer
// functions, seeded from (preset, seed, image_id). Image i is therefore the same whatever
// --images is (a smaller run is a prefix of a bigger one) and whatever the thread count.
//
// Coordinates: pixel (x, y) has its centre at (x, y) and covers [x-0.5, x+0.5]^2; x grows to
// the right and y grows downwards ("above" means a smaller y).
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace xmodal::scenes {

inline constexpr int kGeneratorVersion = 1;

enum class Preset { sort_of_clevr, shapes };
// All seven colours. sort-of-clevr uses the first six in the order red, green, blue, orange,
// gray, yellow; shapes draws from all seven.
enum class Color : uint8_t { red, green, blue, orange, gray, yellow, purple };
enum class Shape : uint8_t { circle, square, triangle };
enum class Size : uint8_t { small, large };

struct Rgb {
  uint8_t r, g, b;
};

const char* preset_name(Preset p);  // "sort-of-clevr" | "shapes"
const char* color_name(Color c);    // "red", ...
const char* shape_name(Shape s);    // "circle", ...
const char* shape_plural(Shape s);  // "circles", ...
const char* size_name(Size s);      // "small" | "large"
Rgb color_rgb(Color c);             // the spec's RGB values
std::optional<Preset> parse_preset(const std::string& s);
std::optional<Color> parse_color(const std::string& s);
std::optional<Shape> parse_shape(const std::string& s);
std::optional<Size> parse_size(const std::string& s);

struct Object {
  Color color = Color::red;
  Shape shape = Shape::circle;
  Size size = Size::small;  // sort-of-clevr: always small
  int cx = 0, cy = 0;       // integer centre (pixel coordinates)
  int r = 5;                // circle radius, square half-side, triangle circumradius
};

struct Scene {
  Preset preset = Preset::shapes;
  int64_t image_id = 0;
  std::string file_name;  // "000042.png", relative to DIR/images
  int width = 0, height = 0;
  int background = 255;   // grey level of the uniform background (sort-of-clevr: 255, white)
  std::vector<Object> objects;
};

// ---- RNG: splitmix64 with our own unbiased integer draws (std:: distributions differ
// between library versions, so they are not used anywhere). ----
uint64_t splitmix64_mix(uint64_t z);
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next();
  uint64_t below(uint64_t n);         // uniform in [0, n), n > 0, unbiased (rejection)
  int uniform_int(int lo, int hi);    // uniform in [lo, hi], both inclusive
  bool coin() { return (next() >> 63) != 0; }
  template <class T>
  void shuffle(std::vector<T>& v) {  // Fisher-Yates with below()
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(i)]);
  }

 private:
  uint64_t state_;
};
// The per-image stream key: (preset, seed, image_id) -> 64-bit seed. `stream` separates the
// scene, caption and question draws so that changing one does not change the others.
uint64_t image_key(Preset p, uint64_t seed, int64_t image_id, uint64_t stream);

// ---- Geometry shared by generation, captions, questions and the caption checker ----
int64_t dist2(const Object& a, const Object& b);  // squared centre distance (exact integer)
enum class Rel : uint8_t { left_of, right_of, above, below };
const char* rel_phrase(Rel r);  // "left of", "right of", "above", "below"
// True when a <rel> b holds with the 12 px rule: the centres differ by at least 12 px on the
// axis and in the right direction.
bool relation_holds(const Object& a, Rel rel, const Object& b);
// Closest / farthest among all objects other than `ref`. Returns the winner's index, or -1 if
// the extreme distance is attained by two objects (an exact tie) or min_gap is not met: the
// runner-up must be at least min_gap px (Euclidean) further (closest) or nearer (farthest).
int extreme_object(const Scene& s, int ref, bool farthest, double min_gap);
// Extent for the non-overlap rule: r for circles and triangles, r*sqrt(2) for squares.
double extent(const Object& o);

// ---- Generation ----
Scene generate_scene(Preset p, uint64_t seed, int64_t image_id);
std::string image_file_name(int64_t image_id);  // 6 digits, zero-padded, ".png"

// ---- Captions (5 per image, in the order count, inventory, relation, relation,
// superlative-or-relation) ----
std::string number_word(int n);              // 0..12 -> "zero".."twelve"
std::string with_article(const std::string& phrase);  // "orange square" -> "an orange square"
std::string object_name(const Object& o);    // "red circle" (colours are unique in a scene)
std::string count_caption(const Scene& s);
std::string inventory_caption(const Scene& s);
std::string relation_caption(const Object& a, Rel rel, const Object& b);
std::string superlative_caption(const Object& winner, bool farthest, const Object& ref);
std::vector<std::string> make_captions(const Scene& s, Rng& rng);
inline constexpr int kCaptionsPerImage = 5;

// ---- Questions ----
struct Question {
  std::string question;
  std::string answer;       // one word; numbers are digits
  std::string family;       // question_type: "U1".."B3" (sort-of-clevr) or exist|count|query|relate|compare
  std::string answer_type;  // "yes/no" | "number" | "other"
};
std::vector<Question> make_questions(const Scene& s, Rng& rng);
int questions_per_image(Preset p);  // 20 (sort-of-clevr) or 10 (shapes)

// ---- Pictures ----
// Row-major RGB bytes, height*width*3.
std::vector<uint8_t> render_rgb(const Scene& s);
// PNG bytes of render_rgb(s) at a fixed compression level (byte-identical for a given seed).
std::string encode_png(const Scene& s);

// ---- scenes.json ----
struct ScenesFile {
  Preset preset = Preset::shapes;
  uint64_t seed = 0;
  int generator_version = kGeneratorVersion;
  std::vector<Scene> scenes;
};
void write_scenes_file(const std::string& path, const ScenesFile& f);
// Validates everything (keys, types, known colour/shape/size names, ranges, unique ids) and
// throws InputError(path, "scenes[3].objects[1]: ...") on the first problem.
ScenesFile read_scenes_file(const std::string& path);
std::vector<Scene> read_scenes(const std::string& path);

// ---- The whole dataset ----
struct SynthOptions {
  Preset preset = Preset::shapes;
  int64_t images = 1000;
  uint64_t seed = 0;
  std::string out;  // DIR; DIR/images is created
};
struct SynthSummary {
  int64_t images = 0, captions = 0, questions = 0;
  double seconds = 0;         // everything
  double seconds_images = 0;  // generation + rendering + PNG files (the rest is the JSON files)
};
// Writes DIR/images/NNNNNN.png, scenes.json, captions.json, questions.json and
// annotations.json. Images are rendered and written in parallel (OpenMP); on_progress(n) is
// called (from any thread, so it must be thread-safe) after each n finished images.
SynthSummary write_dataset(const SynthOptions& o, const std::function<void(int64_t)>& on_progress = {});

// A grid of the first `per_preset` scenes of each preset for `seed`, each with its first
// caption and one question with its answer written underneath. Written as PNG.
void write_contact_sheet(const std::string& path, uint64_t seed, int per_preset = 8);

}  // namespace xmodal::scenes
