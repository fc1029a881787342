#include <doctest/doctest.h>

#include <cstdint>

#include "core/error.hpp"
#include "core/tensor.hpp"

using namespace xmodal;

TEST_CASE("tensor: empty is 64-byte aligned, row-major") {
  Tensor t = Tensor::empty({2, 3, 5});
  CHECK(reinterpret_cast<uintptr_t>(t.raw()) % 64 == 0);
  CHECK(t.numel() == 30);
  CHECK(t.strides() == Shape{15, 5, 1});
  CHECK(t.is_contiguous());
  CHECK(t.nbytes() == 120);
}

TEST_CASE("tensor: dtypes and sizes") {
  CHECK(dtype_size(DType::f32) == 4);
  CHECK(dtype_size(DType::bf16) == 2);
  CHECK(dtype_size(DType::i32) == 4);
  CHECK(dtype_size(DType::i64) == 8);
  CHECK(dtype_size(DType::u8) == 1);
  Tensor t = Tensor::zeros({4}, DType::i64);
  CHECK(t.data<int64_t>()[3] == 0);
  CHECK_THROWS_AS(t.data<float>(), InternalError);
}

TEST_CASE("tensor: views share storage; transpose and contiguous") {
  Tensor t = Tensor::from({2, 3}, {0, 1, 2, 3, 4, 5});
  Tensor tt = t.transpose(0, 1);
  CHECK(tt.shape() == Shape{3, 2});
  CHECK_FALSE(tt.is_contiguous());
  Tensor c = tt.contiguous();
  CHECK(c.is_contiguous());
  const float want[] = {0, 3, 1, 4, 2, 5};
  for (int i = 0; i < 6; ++i) CHECK(c.f32()[i] == want[i]);
  Tensor row = t.select(0, 1);
  CHECK(row.shape() == Shape{3});
  CHECK(row.f32()[0] == 3);
  row.f32()[0] = 42;  // writes through the view
  CHECK(t.f32()[3] == 42);
  Tensor s = t.slice(1, 1, 3).contiguous();
  CHECK(s.shape() == Shape{2, 2});
  CHECK(s.f32()[0] == 1);
  CHECK(s.f32()[3] == 5);
}

TEST_CASE("tensor: reshape checks sizes and infers -1") {
  Tensor t = Tensor::zeros({4, 6});
  CHECK(t.reshape({2, -1}).shape() == Shape{2, 12});
  CHECK_THROWS_AS(t.reshape({5, 5}), InternalError);
  CHECK_THROWS_AS(t.transpose(0, 1).reshape({24}), InternalError);
  CHECK_THROWS_AS(t.slice(0, 3, 5), InternalError);
}

TEST_CASE("tensor: shape overflow and negative dims throw") {
  CHECK_THROWS_AS(shape_numel({1LL << 40, 1LL << 40}), InternalError);
  CHECK_THROWS_AS(shape_numel({-1, 2}), InternalError);
}

TEST_CASE("bf16 round trip, rounding to nearest even") {
  CHECK(bf16_to_f32(f32_to_bf16(1.0f)) == 1.0f);
  CHECK(bf16_to_f32(f32_to_bf16(-2.5f)) == -2.5f);
  // 1 + 2^-8 is exactly halfway between bf16 neighbours 1 and 1+2^-7: ties to even -> 1.
  CHECK(bf16_to_f32(f32_to_bf16(1.0f + 1.0f / 256)) == 1.0f);
  Tensor t = Tensor::from({3}, {0.1f, 1000.5f, -3.0f});
  Tensor b = t.to(DType::bf16).to(DType::f32);
  CHECK(max_abs_diff(t, b) < 4.0f);  // 1000.5 rounds to 1000 in bf16 (8 bits of mantissa)
  CHECK(b.f32()[2] == -3.0f);
}
