// Attention maps as pictures (--attention-map DIR): per generated word, the cross-attention over
// the model's image grid as a heatmap blended onto the image, and one contact sheet per image
// with the word under each panel. OpenCV drawing only.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "encoders/image.hpp"

namespace xmodal::app {

// image [H, W, 3] u8; map [grid * grid] (row-major, any non-negative scale) -> the image (shrunk
// to at most max_side px) with the map, stretched bilinearly over it, as a JET heatmap blended in.
Image heatmap_overlay(const Image& image, const std::vector<float>& map, int64_t grid, int max_side = 384);

// Writes DIR/<stem>.<NN>.<word>.png for each map and DIR/<stem>.sheet.png (the image, then one
// panel per map with its word underneath). maps.size() == words.size(). Returns the files
// written (sheet last). InputError naming the file when a PNG cannot be written.
std::vector<std::string> write_attention_maps(const Image& image, const std::vector<std::vector<float>>& maps,
                                              int64_t grid, const std::vector<std::string>& words,
                                              const std::string& dir, const std::string& stem);

// A word as a safe file-name part: ASCII letters and digits only ("tok" when none), at most 24.
std::string file_word(const std::string& token);

}  // namespace xmodal::app
