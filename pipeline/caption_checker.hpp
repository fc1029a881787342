// Caption checker for the scenes benchmark (GTD-style: grammar, truth, coverage).
//
// A generated caption is parsed with the template grammar of SCENES.md (both presets):
//   count        there is|are NUM SHAPE[s] {(,|and|, and) NUM SHAPE[s]} .
//   inventory    a|an [SIZE] COLOR SHAPE {(,|and|, and) a|an [SIZE] COLOR SHAPE} .
//   relation     the NP is left of|right of|above|below the NP .
//   superlative  the NP is closest to|farthest from|furthest from the NP .
//   NP = [SIZE] COLOR SHAPE;  NUM = zero..twelve or digits;  the final '.' is optional,
//   case and spacing are ignored; article and verb agreement are not checked.
// Each parsed caption is a set of propositions, each true or false of the scene:
//   count        one per item: the scene has exactly NUM objects of that shape.
//   inventory    one per item: an object with that colour and shape (and size, if given) exists.
//   relation     one: both objects exist and the relation holds by the spec's 12 px rule.
//   superlative  one: both exist and the first is the closest/farthest object from the second
//                among all others, with the spec's 4 px runner-up gap.
// An object counts as mentioned when a noun phrase names its colour and shape correctly
// (count captions name no object).
//
// Metrics over a results file:
//   parse_rate   = parsed captions / captions
//   truthfulness = true propositions / propositions (over parsed captions)
//   coverage     = mentioned objects / objects, over the images that have a caption
//                  (an object mentioned by any caption of its image counts once).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "pipeline/datasets.hpp"
#include "pipeline/scenes.hpp"

namespace xmodal::scenes {

struct CaptionCheck {
  bool parsed = false;
  std::string kind;   // "count" | "inventory" | "relation" | "superlative" | "" (not parsed)
  std::string error;  // why it did not parse, e.g. "unknown word 'pink' (word 3)"
  int propositions = 0, true_propositions = 0;
  std::vector<std::string> false_propositions;  // readable, e.g. "count(circle) = 2, is 1"
  std::vector<int> mentioned;                   // indices into scene.objects, sorted, unique
};

// Checks one caption against its scene.
CaptionCheck check_caption(const Scene& scene, const std::string& caption);

struct CaptionCheckReport {
  int64_t captions = 0, parsed = 0;
  int64_t propositions = 0, true_propositions = 0;
  int64_t images = 0, objects = 0, objects_mentioned = 0;
  double parse_rate = 0, truthfulness = 0, coverage = 0;  // 0 when the denominator is 0
  std::map<std::string, int64_t> parsed_by_kind;           // "count" -> 17, ...
};

// Checks every result against the scene with its image_id. A result whose image_id is not in
// `scenes` throws InputError("", "caption result for image_id N: no such scene ...").
CaptionCheckReport check_captions(const std::vector<Scene>& scenes, const std::vector<data::CaptionResult>& results);

}  // namespace xmodal::scenes
