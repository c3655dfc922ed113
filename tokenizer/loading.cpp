#include "tokenizer/loading.hpp"

#include "tokenizer/unicode.hpp"

namespace kiln::tokenizer {

PostProcessor bert_post_processor(const std::string& cls, std::int32_t cls_id, const std::string& sep,
                                  std::int32_t sep_id) {
  const TemplatePiece cls_piece{-1, 0, {cls_id}, {cls}};
  const TemplatePiece sep0{-1, 0, {sep_id}, {sep}};
  const TemplatePiece sep1{-1, 1, {sep_id}, {sep}};
  const TemplatePiece a{0, 0, {}, {}};
  const TemplatePiece b{1, 1, {}, {}};
  PostProcessor p;
  p.single.pieces = {cls_piece, a, sep0};
  p.pair.pieces = {cls_piece, a, sep0, b, sep1};
  return p;
}

std::string_view trim_end_whitespace(std::string_view text) {
  const UnicodeData& u = UnicodeData::get();
  std::size_t end = text.size();
  while (end > 0) {
    std::size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
    const auto* p = reinterpret_cast<const unsigned char*>(text.data() + start);
    char32_t cp = p[0];
    const std::size_t len = end - start;
    if (len == 2) cp = ((p[0] & 0x1F) << 6) | (p[1] & 0x3F);
    if (len == 3) cp = ((p[0] & 0x0F) << 12) | ((p[1] & 0x3F) << 6) | (p[2] & 0x3F);
    if (len == 4) cp = ((p[0] & 0x07) << 18) | ((p[1] & 0x3F) << 12) | ((p[2] & 0x3F) << 6) | (p[3] & 0x3F);
    if (!(u.flags(cp) & tables::kWhitespace)) break;
    end = start;
  }
  return text.substr(0, end);
}

}  // namespace kiln::tokenizer
