// kiln::Embedder (include/kiln/text.hpp) on the real all-MiniLM-L6-v2 (fixture t2/minilm_l6):
// sentence-transformers' embeddings of the 100 reference sentences (made by
// tests/fixtures/make_fixtures.py: mean pooling, normalized, max_seq_length 256), a
// paraphrase ranking, and results that do not depend on input order or batch size.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "format/npy.hpp"
#include "kiln/text.hpp"
#include "tests/support/fixtures.hpp"

namespace {

// all-MiniLM-L6-v2's vocab.txt is bert-base-uncased's, byte for byte (same sha256).
const std::string kVocab = std::string(KILN_SOURCE_ROOT) + "/tests/tokenizer/vocab/bert-base-uncased/vocab.txt";

std::string minilm_dir() { return (kiln::testing::fixtures_root() / "t2" / "minilm_l6").string(); }

// sentence-transformers' settings for all-MiniLM-L6-v2.
kiln::EmbedOptions minilm_options() {
  kiln::EmbedOptions o;
  o.pooling = kiln::Pooling::mean;
  o.normalize = true;
  o.max_length = 256;
  return o;
}

const kiln::Embedder& minilm() {
  static const kiln::Embedder e = kiln::Embedder::load(minilm_dir() + "/minilm_l6.pt", kVocab, minilm_options());
  return e;
}

std::vector<std::string> reference_sentences() {
  std::ifstream in(minilm_dir() + "/sentences.txt");
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

}  // namespace

TEST_CASE("embed: all-MiniLM-L6-v2 matches sentence-transformers on the 100 reference sentences") {
  const std::vector<std::string> sentences = reference_sentences();
  REQUIRE(sentences.size() == 100);
  const kiln::format::NpyArray expected = kiln::format::read_npy(minilm_dir() + "/sentence_embeddings.npy");
  REQUIRE(expected.dtype == kiln::DType::float32);
  REQUIRE(expected.shape == std::vector<std::int64_t>{100, 384});
  const float* ref = reinterpret_cast<const float*>(expected.data.data());

  const kiln::Embedder& e = minilm();
  CHECK(e.dimension() == 384);
  const auto got = e.embed(sentences);
  REQUIRE(got.size() == 100);
  float worst = 1;
  std::size_t worst_at = 0;
  float max_diff = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("sentence " << i << ": " << sentences[i]);
    REQUIRE(got[i].size() == 384);
    const std::vector<float> want(ref + i * 384, ref + (i + 1) * 384);
    const float c = kiln::cosine(got[i], want);
    CHECK(c >= 0.9999f);
    CHECK(std::fabs(kiln::dot(got[i], got[i]) - 1.0f) < 1e-5f);  // normalized, like the reference
    if (c < worst) worst = c, worst_at = i;
    for (std::size_t k = 0; k < 384; ++k) max_diff = std::max(max_diff, std::fabs(got[i][k] - want[k]));
  }
  char line[128];
  std::snprintf(line, sizeof line, "worst cosine %.9f (sentence %zu), largest difference %.3g", static_cast<double>(worst),
                worst_at, static_cast<double>(max_diff));
  MESSAGE(line);
}

TEST_CASE("embed: paraphrases score higher than unrelated pairs") {
  const std::vector<std::pair<std::string, std::string>> paraphrases = {
      {"A man is playing a guitar.", "A person plays the guitar."},
      {"The weather is lovely today.", "It is a beautiful sunny day."},
      {"How do I reset my password?", "I forgot my password, how can I change it?"},
      {"The children are playing football in the park.", "Kids play soccer in the park."},
      {"She bought a new car yesterday.", "Yesterday she purchased a new automobile."},
      {"The stock market crashed this morning.", "Share prices fell sharply early today."},
  };
  const std::vector<std::pair<std::string, std::string>> unrelated = {
      {"A man is playing a guitar.", "The stock market crashed this morning."},
      {"The weather is lovely today.", "How do I reset my password?"},
      {"She bought a new car yesterday.", "Photosynthesis converts light into chemical energy."},
      {"Kids play soccer in the park.", "The recipe needs two cups of flour."},
      {"I forgot my password, how can I change it?", "The cat sleeps on the windowsill."},
      {"Share prices fell sharply early today.", "The orchestra tuned their instruments."},
  };
  auto score = [](const std::pair<std::string, std::string>& p) {
    const auto v = minilm().embed({p.first, p.second});
    return kiln::cosine(v[0], v[1]);
  };
  float worst_paraphrase = 1, best_unrelated = -1;
  for (const auto& p : paraphrases) worst_paraphrase = std::min(worst_paraphrase, score(p));
  for (const auto& p : unrelated) best_unrelated = std::max(best_unrelated, score(p));
  char line[96];
  std::snprintf(line, sizeof line, "lowest paraphrase cosine %.4f, highest unrelated %.4f",
                static_cast<double>(worst_paraphrase), static_cast<double>(best_unrelated));
  MESSAGE(line);
  CHECK(worst_paraphrase > best_unrelated);
}

TEST_CASE("embed: results come back in input order and do not depend on the batch size") {
  const std::vector<std::string> sentences = reference_sentences();
  const auto forward = minilm().embed(sentences);
  std::vector<std::string> reversed(sentences.rbegin(), sentences.rend());
  const auto backward = minilm().embed(reversed);
  REQUIRE(backward.size() == forward.size());
  kiln::EmbedOptions one = minilm_options();
  one.batch_size = 1;
  const kiln::Embedder single = kiln::Embedder::from(minilm().model(), minilm().tokenizer(), one);
  std::size_t progress_calls = 0, last_done = 0;
  const auto unbatched = single.embed(sentences, [&](std::size_t done, std::size_t total) {
    ++progress_calls;
    CHECK(done > last_done);
    CHECK(total == sentences.size());
    last_done = done;
  });
  CHECK(progress_calls == sentences.size());
  CHECK(last_done == sentences.size());
  for (std::size_t i = 0; i < forward.size(); ++i) {
    INFO("sentence " << i);
    const auto& r = backward[forward.size() - 1 - i];
    for (std::size_t k = 0; k < forward[i].size(); ++k) {
      // The same text in a batch of other lengths: padding changes only rounding.
      REQUIRE(std::fabs(forward[i][k] - r[k]) <= 1e-5f);
      REQUIRE(std::fabs(forward[i][k] - unbatched[i][k]) <= 1e-5f);
    }
  }
  CHECK(minilm().embed(std::vector<std::string>{}).empty());
  // A single text, and the empty text ([CLS] [SEP]) embed too.
  CHECK(minilm().embed(std::string(sentences[0])) == minilm().embed(std::vector<std::string>{sentences[0]})[0]);
  CHECK(minilm().embed(std::string()).size() == 384);
}

TEST_CASE("embed: cls pooling, unnormalized, and truncation") {
  kiln::EmbedOptions o = minilm_options();
  o.pooling = kiln::Pooling::cls;
  o.normalize = false;
  o.max_length = 8;
  const kiln::Embedder e = kiln::Embedder::from(minilm().model(), minilm().tokenizer(), o);
  const std::string long_text = "one two three four five six seven eight nine ten eleven twelve";
  const auto v = e.embed({long_text, "one two three four five six"});  // both cut to 8 tokens
  CHECK(std::fabs(std::sqrt(kiln::dot(v[0], v[0])) - 1.0f) > 1e-3f);  // not normalized
  for (std::size_t k = 0; k < v[0].size(); ++k) REQUIRE(std::fabs(v[0][k] - v[1][k]) <= 1e-5f);
}

TEST_CASE("embed: models and options it cannot embed with are refused") {
  const std::string seqcls = (kiln::testing::fixtures_root() / "t2" / "bert_tiny_seqcls" / "bert_tiny_seqcls.pt").string();
  try {
    kiln::Embedder::load(seqcls, kVocab);
    FAIL("a classification head was taken for an encoder");
  } catch (const kiln::Error& err) {
    CHECK(err.kind() == kiln::ErrorKind::bad_input);
    CHECK(err.file() == seqcls);
    CHECK(err.message().find("not an encoder: its first output is float32 [batch, 3]") != std::string::npos);
  }
  // A masked-LM head's first output is [batch, seq, vocabulary]: shaped like a hidden state,
  // told apart by the archive's class.
  const std::string mlm = (kiln::testing::fixtures_root() / "t2" / "bert_tiny_mlm" / "bert_tiny_mlm.pt").string();
  try {
    kiln::Embedder::load(mlm, kVocab);
    FAIL("a masked-LM head was taken for an encoder");
  } catch (const kiln::Error& err) {
    CHECK(err.kind() == kiln::ErrorKind::bad_input);
    CHECK(err.message().find("not an encoder: it is a BertForMaskedLM") != std::string::npos);
  }
  kiln::EmbedOptions bad;
  bad.batch_size = 0;
  CHECK_THROWS_AS(kiln::Embedder::from(minilm().model(), minilm().tokenizer(), bad), kiln::Error);
  bad = {};
  bad.max_length = 1;
  CHECK_THROWS_AS(kiln::Embedder::from(minilm().model(), minilm().tokenizer(), bad), kiln::Error);
  try {
    minilm().embed({"fine", std::string("bad \xff byte")});
    FAIL("invalid UTF-8 embedded");
  } catch (const kiln::Error& err) {
    CHECK(err.kind() == kiln::ErrorKind::bad_input);
    CHECK(err.where() == "text 1");
  }
  CHECK_THROWS_AS(kiln::cosine({1.0f}, {1.0f, 2.0f}), kiln::Error);
}
