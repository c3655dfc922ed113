// kiln's text tasks through the C++ API (include/kiln/text.hpp): task detection by class
// and by output shapes, results that do not depend on batching or on how the model was
// loaded, and the refusals. The answers themselves are checked against the Transformers
// pipelines in tests/cli/text_tasks_test.py, on the same fixtures (t2/text_*).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "kiln/text.hpp"
#include "tests/support/fixtures.hpp"

namespace {

const std::string kVocab = std::string(KILN_SOURCE_ROOT) + "/tests/tokenizer/vocab/bert-base-uncased/vocab.txt";

std::string archive(const std::string& name) {
  return (kiln::testing::fixtures_root() / "t2" / name / (name + ".pt")).string();
}

const kiln::Tokenizer& vocab() {
  static const kiln::Tokenizer t = kiln::Tokenizer::from_file(kVocab);
  return t;
}

}  // namespace

TEST_CASE("text tasks: the task of each archive, by class and by output shapes") {
  struct Case {
    const char* fixture;
    kiln::TextTask by_class;
    kiln::TextTask by_shapes;
    std::size_t vocab_size;
  };
  const Case cases[] = {
      {"text_mlm", kiln::TextTask::fill_mask, kiln::TextTask::fill_mask, 30522},
      {"text_seqcls", kiln::TextTask::classification, kiln::TextTask::classification, 30522},
      {"text_qa_sdpa", kiln::TextTask::question_answering, kiln::TextTask::question_answering, 30522},
      {"bert_tiny_tokcls", kiln::TextTask::token_classification, kiln::TextTask::encoder, 512},
      {"bert_tiny_3in", kiln::TextTask::encoder, kiln::TextTask::encoder, 512},
      {"minilm_l6", kiln::TextTask::encoder, kiln::TextTask::encoder, 30522},
      {"scripted_control_flow", kiln::TextTask::other, kiln::TextTask::other, 0},
  };
  for (const Case& c : cases) {
    CAPTURE(std::string(c.fixture));
    const kiln::Model model = kiln::Model::load(archive(c.fixture));
    CHECK(kiln::detect_task(model, archive(c.fixture)) == c.by_class);
    CHECK(kiln::detect_task(model, "", c.vocab_size) == c.by_shapes);
  }
  CHECK(std::string(kiln::task_name(kiln::TextTask::question_answering)) == "question-answering");
}

TEST_CASE("text tasks: answers do not depend on batch size or on loading by file or by model") {
  const std::vector<std::string> texts = {"the cat sat on the [MASK].", "[MASK] is the capital of [MASK].",
                                          "a much longer sentence about [MASK] music and guitars on a street"};
  kiln::FillMaskOptions one;
  one.batch_size = 1;
  one.top_k = 4;
  const auto by_file = kiln::MaskFiller::load(archive("text_mlm"), kVocab, one).fill(texts);
  kiln::FillMaskOptions many = one;
  many.batch_size = 8;
  const auto by_model = kiln::MaskFiller::from(kiln::Model::load(archive("text_mlm")), vocab(), many).fill(texts);
  REQUIRE(by_file.size() == 3);
  REQUIRE(by_model.size() == 3);
  CHECK(by_file[1].size() == 2);  // two [MASK]s
  for (std::size_t i = 0; i < 3; ++i) {
    REQUIRE(by_file[i].size() == by_model[i].size());
    for (std::size_t m = 0; m < by_file[i].size(); ++m) {
      REQUIRE(by_file[i][m].size() == 4);
      for (std::size_t k = 0; k < 4; ++k) {
        CHECK(by_file[i][m][k].id == by_model[i][m][k].id);
        CHECK(by_file[i][m][k].sequence == by_model[i][m][k].sequence);
        CHECK(by_file[i][m][k].score == doctest::Approx(by_model[i][m][k].score).epsilon(1e-5));
        if (k) CHECK(by_file[i][m][k - 1].score >= by_file[i][m][k].score);
      }
    }
  }

  const kiln::Classifier c = kiln::Classifier::load(archive("text_seqcls"), kVocab);
  CHECK(c.label_count() == 3);
  const auto labels = c.classify(texts);
  for (const auto& l : labels) {
    REQUIRE(l.size() == 3);
    CHECK(l[0].score + l[1].score + l[2].score == doctest::Approx(1.0).epsilon(1e-5));
  }
  kiln::ClassifyOptions named;
  named.labels = {"a", "b", "c"};
  named.batch_size = 1;
  const auto renamed = kiln::Classifier::from(c.model(), c.tokenizer(), named).classify(texts);
  for (std::size_t i = 0; i < texts.size(); ++i) {
    for (std::size_t k = 0; k < 3; ++k) {
      CHECK(renamed[i][k].label == std::string(1, static_cast<char>('a' + (labels[i][k].label.back() - '0'))));
      CHECK(renamed[i][k].score == doctest::Approx(labels[i][k].score).epsilon(1e-5));
    }
  }
}

TEST_CASE("text tasks: question answering splits long contexts into windows") {
  std::string context;
  for (int i = 0; i < 40; ++i) context += "The train to Berlin leaves at seven in the morning. ";
  kiln::QaOptions small;
  small.max_length = 48;
  small.stride = 12;
  small.top_k = 3;
  const kiln::QuestionAnswerer qa = kiln::QuestionAnswerer::load(archive("text_qa"), kVocab, small);
  const std::vector<kiln::Answer> answers = qa.answer("When does the train leave?", context);
  REQUIRE(answers.size() == 3);
  for (const kiln::Answer& a : answers) {
    CHECK(a.start < a.end);
    CHECK(a.end <= context.size());  // ASCII: code points are bytes
    CHECK(context.substr(a.start, a.end - a.start) == a.text);
    CHECK(a.score > 0);
  }
  CHECK(answers[0].score >= answers[1].score);
  // Many questions at once give what each gives alone.
  const auto both = qa.answer({{"When does the train leave?", context}, {"Where?", "In Berlin, at seven."}});
  REQUIRE(both.size() == 2);
  CHECK(both[0][0].text == answers[0].text);
  CHECK(both[1][0].text == qa.answer("Where?", "In Berlin, at seven.")[0].text);

  kiln::QaOptions bad = small;
  bad.stride = 48;
  CHECK_THROWS_AS(kiln::QuestionAnswerer::from(qa.model(), qa.tokenizer(), bad), kiln::Error);
  std::string question;  // 40 tokens: with [CLS] and two [SEP], 5 of 48 left, fewer than the stride
  for (int i = 0; i < 40; ++i) question += "word ";
  try {
    qa.answer(question, context);
    FAIL("a question longer than max_length was answered");
  } catch (const kiln::Error& e) {
    CHECK(e.kind() == kiln::ErrorKind::bad_input);
    CHECK(e.where() == "question 0");
  }
}

TEST_CASE("text tasks: archives made for another task are refused, naming both") {
  try {
    kiln::QuestionAnswerer::load(archive("text_seqcls"), kVocab);
    FAIL("a classifier was taken for question answering");
  } catch (const kiln::Error& e) {
    CHECK(e.kind() == kiln::ErrorKind::bad_input);
    CHECK(e.file() == archive("text_seqcls"));
    CHECK(e.message().find("it is a BertForSequenceClassification") != std::string::npos);
    CHECK(e.message().find("BertForQuestionAnswering") != std::string::npos);
  }
  // Without the file only shapes can tell: a classifier's [batch, labels] is not [batch, seq].
  CHECK_THROWS_AS(kiln::QuestionAnswerer::from(kiln::Model::load(archive("text_seqcls")), vocab()), kiln::Error);
  CHECK_THROWS_AS(kiln::MaskFiller::from(kiln::Model::load(archive("bert_tiny_mlm")), vocab()), kiln::Error);
  CHECK_THROWS_AS(kiln::Classifier::load(archive("text_mlm"), kVocab), kiln::Error);
  const kiln::MaskFiller f = kiln::MaskFiller::load(archive("text_mlm"), kVocab);
  try {
    f.fill(std::vector<std::string>{"a [MASK]", "none here"});
    FAIL("a text without [MASK] was filled");
  } catch (const kiln::Error& e) {
    CHECK(e.where() == "text 1");
  }
}

TEST_CASE("tokenizer: decode joins WordPiece continuations and drops special tokens") {
  const kiln::Tokenizer& t = vocab();
  const std::string text = "the quick brown fox jumps over the lazy dog";
  const kiln::Encoding e = t.encode(text + " unaffable");
  CHECK(t.decode(e.ids) == text + " unaffable");
  CHECK(t.decode(e.ids, false) == "[CLS] " + text + " unaffable [SEP]");
  CHECK_THROWS_AS(t.decode({static_cast<std::int32_t>(t.vocab_size())}), kiln::Error);
  // Each word's tokens share a word id, counted from 0; special tokens have -1.
  const kiln::Encoding w = t.encode("unaffable fox");
  REQUIRE(w.word_ids.size() == w.ids.size());
  CHECK(w.word_ids.front() == -1);
  CHECK(w.word_ids.back() == -1);
  CHECK(w.word_ids[1] == 0);
  CHECK(w.word_ids[w.ids.size() - 2] == 1);
}
