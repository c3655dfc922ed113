#!/usr/bin/env python3
"""The tokenizer golden corpus and the reference outputs kiln's tokenizer must reproduce.

    make_corpus.py corpus [--check]
        Writes tests/tokenizer/corpus.jsonl (committed) from the lines written out below
        and from variations made with a fixed seed. Standard library only; the output is
        the same on every machine and Python version. --check only compares.

    make_corpus.py fuzz-seeds OUT_DIR
        Writes seed inputs for the fuzz_tokenizer libFuzzer target (tests/fuzz/) from corpus
        lines: an options byte (see fuzz_tokenizer.cpp), then the text, a TAB and the pair.
        Standard library only.

    make_corpus.py expected [--out DIR] [--vocab-dir DIR] [--force]
        Runs Hugging Face `tokenizers` (the Rust reference; run it with the `tok`
        environment: $(tools/python-env tok)/bin/python) over every corpus line, for each
        vocabulary and option set, and writes one JSON-lines file per pair to
        DIR/tokenizer-golden.<vocab>.<options>.jsonl plus DIR/tokenizer-golden.json (the
        index). DIR defaults to $KILN_FIXTURES, else <repo>/.fixtures. Skipped when the
        index's stamp (this script, the corpus, the vocabularies, the tokenizers version)
        is current, unless --force.

Why files at the top of the fixture folder rather than in a folder of their own: every
folder there is a fixture generation (t1, t2) and tests/fixtures/generator_check.cpp
requires an index.json of the generation kind in each, hidden folders included.

Each vocabulary is loaded twice, from tokenizer.json (Tokenizer.from_file) and from
vocab.txt (BertWordPieceTokenizer with the model's lowercasing); the two must give the
same result for every line and option set, or the script fails, so one expected file
serves both of kiln's load paths.

Every expected line is {"line": N, "text": ..., ["text_pair": ...,] ["options": ...,] then either
"input_ids", "token_type_ids", "attention_mask", "offsets", "tokens", "word_ids" (-1 for
special tokens and padding), or "error" (the
reference's message) when the reference refuses the input (a truncation it cannot do).
Offsets are in Unicode code points, as Python's tokenizers reports them for str input.
"options" ({"add_special_tokens", "max_length", "truncation", "padding"}) appears only in
the "edges" set, whose records each name their own; the other sets apply one set of
options (listed in the index) to every corpus line.
"""

import argparse
import concurrent.futures
import hashlib
import json
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(HERE, "corpus.jsonl")

# Vocabularies and how each is lowercased (bert-base-uncased strips accents too, which
# BertWordPieceTokenizer derives from lowercase, as tokenizer.json's strip_accents: null).
VOCABS = [
    ("bert-base-uncased", True),
    ("bert-base-cased", False),
    ("bert-base-multilingual-cased", False),
]

# name -> (add_special_tokens, max_length, truncation strategy, pad to max_length)
OPTION_SETS = {
    "default": (True, None, None, False),
    "no_special": (False, None, None, False),
    "max16_longest_first": (True, 16, "longest_first", False),
    "max16_only_first": (True, 16, "only_first", False),
    "max16_only_second": (True, 16, "only_second", False),
    "max32_padding": (True, 32, "longest_first", True),
}

# Per-line options: the truncation edge cases (max_length 1 to 5, around the two or three
# special tokens, where the reference has quirks: no truncation at all below their count,
# errors for only_first/only_second) over EDGE_LINES hand-written lines, half of them pairs. Each
# record of this set carries its own "options".
EDGE_SET = "edges"
EDGE_LINES = 120
EDGE_OPTIONS = ([(special, ml, strategy, False) for ml in range(1, 6)
                 for strategy in ("longest_first", "only_first", "only_second") for special in (True, False)] +
                [(True, ml, "longest_first", True) for ml in range(1, 6)])

MIN_LINES = 2000

# ---------------------------------------------------------------------------------------
# Hand-written lines. Invisible and control characters are written as escapes so that the
# source shows them. A tuple is a pair (question, context).

BASIC = [
    "Who was Jim Henson?",
    ("Who was Jim Henson?", "Jim Henson was a puppeteer"),
    "The quick brown fox jumps over the lazy dog.",
    "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG!",
    "Hello, world! How are you today?",
    "I can't believe it's not butter.",
    "She said, \"Don't go there.\"",
    "rock'n'roll, O'Neil, O\u2019Neil, y'all'd've",
    "state-of-the-art e-mail re-entry co-operate",
    "Mr. and Mrs. Smith live at 221B Baker St., London.",
    "It costs $5.99 (plus tax) - or 5,99 \u20ac in Europe.",
    "unaffable unbelievable antidisestablishmentarianism",
    "Supercalifragilisticexpialidocious",
    "hyperparameter optimization of transformer-based architectures",
    "McDonald's iPhone eBay YouTube WiFi PhD",
    "a b c d e f g h i j k l m n o p q r s t u v w x y z",
    "A",
    "a",
    ".",
    "?!",
    "The year 1984 and the year 2001: A Space Odyssey.",
    "E = mc^2, F = ma, and a^2 + b^2 = c^2.",
    "Tokenization is the first step of most NLP pipelines.",
    "BERT stands for Bidirectional Encoder Representations from Transformers.",
    "   leading and trailing spaces   ",
    "multiple     spaces      between     words",
    "tab\tseparated\twords",
    "line\nbreak and carriage\rreturn and both\r\nhere",
    "ALLCAPS lowercase MiXeD cAsE",
    "naive na\u00efve NAIVE",
    "The U.S.A. and the U.K. are allies.",
    "He scored 3-2 in the 90th minute!!!",
    "50% off: buy 1, get 1 free*",
    "#hashtag @mention &amp; <tag>",
    "~tilde ^caret `backtick |pipe \\backslash",
]

LATIN_ACCENTS = [
    "caf\u00e9 na\u00efve r\u00e9sum\u00e9 fa\u00e7ade pi\u00f1ata cr\u00e8me br\u00fbl\u00e9e",
    "cafe\u0301 nai\u0308ve re\u0301sume\u0301",  # the same words, decomposed
    "CAF\u00c9 R\u00c9SUM\u00c9 \u00c0 LA CARTE",
    "Fran\u00e7ois Gar\u00e7on \u00c7a va?",
    "\u00bfD\u00f3nde est\u00e1 el ba\u00f1o? \u00a1Ma\u00f1ana!",
    "S\u00e3o Paulo, Cora\u00e7\u00e3o, a\u00e7\u00e3o, p\u00e3es",
    "Ti\u1ebfng Vi\u1ec7t c\u00f3 nhi\u1ec1u d\u1ea5u: \u0111\u01b0\u1eddng, ng\u01b0\u1eddi, Nguy\u1ec5n",
    "Za\u017c\u00f3\u0142\u0107 g\u0119\u015bl\u0105 ja\u017a\u0144 \u0141\u00f3d\u017a",
    "P\u0159\u00edli\u0161 \u017elu\u0165ou\u010dk\u00fd k\u016f\u0148 \u00fap\u011bl \u010f\u00e1belsk\u00e9 \u00f3dy",
    "\u00de\u00f3r \u00f0ingi \u00e6vint\u00fdri \u00d0\u00e6r \u00deingvellir",
    "Rom\u00e2nia: \u0219coal\u0103, \u021bar\u0103 (comma) vs \u015fcoal\u0103, \u0163ar\u0103 (cedilla)",
    "\u00c5ngstr\u00f6m \u212bngstr\u00f6m (U+212B) K (U+212A Kelvin) \u2126 (Ohm)",
    "\u01c4 \u01c5 \u01c6 \u01c7 \u01c8 \u01c9 \u01ca \u01cb \u01cc digraphs",
    "\u01f0 j\u030c \u1e9b\u0323 \u0149 special decompositions",
    "M\u00fcller M\u00dcLLER Mu\u0308ller Mueller",
    "\u00e0\u00e1\u00e2\u00e3\u00e4\u00e5\u00e6\u00e7\u00e8\u00e9\u00ea\u00eb\u00ec\u00ed\u00ee\u00ef\u00f0\u00f1\u00f2\u00f3\u00f4\u00f5\u00f6\u00f8\u00f9\u00fa\u00fb\u00fc\u00fd\u00fe\u00ff",
    "\u00c0\u00c1\u00c2\u00c3\u00c4\u00c5\u00c6\u00c7\u00c8\u00c9\u00ca\u00cb\u00cc\u00cd\u00ce\u00cf\u00d0\u00d1\u00d2\u00d3\u00d4\u00d5\u00d6\u00d8\u00d9\u00da\u00db\u00dc\u00dd\u00de",
    "\u0100\u0101\u0102\u0103\u0104\u0105 \u0112\u0113 \u012a\u012b \u014c\u014d \u016a\u016b \u0174\u0175 \u0176\u0177",
    "Esperanto: e\u0125o\u015dan\u011do \u0109iu\u0135a\u016dde",
    "Ha\u0161ek, \u0160koda, \u017di\u017eek, Dvo\u0159\u00e1k",
    "Malm\u00f6 G\u00f6teborg \u00c5re \u00d8resund K\u00f8benhavn \u00c6r\u00f8",
    "Stra\u00dfe STRASSE Gr\u00f6\u00dfe GR\u00d6SSE \u1e9e \u00df",
    "\u00e9\u00e9\u00e9\u00e9\u00e9 e\u0301e\u0301e\u0301 \u00c9\u00c9\u00c9",
    "na\u0303o, a\u0300, o\u0302, u\u0308, c\u0327, n\u0303",
    "\u1e00\u1e01 \u1e3e\u1e3f \u1e88\u1e89 \u1ef2\u1ef3 \u1e9e \u1eff",
    "Ho\u00e0ng \u0110\u1ee9c Tr\u1ecbnh C\u00f4ng S\u01a1n",
    "Eisb\u00e4r \u00dcberma\u00df \u00f6ffentlich",
]

GREEK = [
    "\u0393\u03b5\u03b9\u03ac \u03c3\u03bf\u03c5 \u03ba\u03cc\u03c3\u03bc\u03b5!",
    "\u03a3\u038a\u03a3\u03a5\u03a6\u039f\u03a3 \u03c3\u03af\u03c3\u03c5\u03c6\u03bf\u03c2",
    "\u039f\u0394\u03a5\u03a3\u03a3\u0395\u03a5\u03a3 \u1f48\u03b4\u03c5\u03c3\u03c3\u03b5\u03cd\u03c2",
    "\u03c3\u03c2 \u03a3 \u03c2 \u03c3 \u03a3\u03a3 \u03c3\u03c3\u03c2",
    "\u038c\u03a3\u039f\u03a3 \u1f4d\u03c3\u03bf\u03c2 \u0391\u0398\u0397\u039d\u0391 \u0391\u03b8\u03ae\u03bd\u03b1",
    "\u1f08\u03c1\u03c7\u1f74 \u1f26\u03bd \u1f41 \u03bb\u03cc\u03b3\u03bf\u03c2, \u03ba\u03b1\u1f76 \u1f41 \u03bb\u03cc\u03b3\u03bf\u03c2 \u1f26\u03bd \u03c0\u03c1\u1f78\u03c2 \u03c4\u1f78\u03bd \u03b8\u03b5\u03cc\u03bd",
    "\u1fb3 \u1fbc \u1fc3 \u1fcc \u1ff3 \u1ffc \u1f80 \u1f88 ypogegrammeni and prosgegrammeni",
    "\u03b1\u0345 \u0399 \u03b9 \u1fbe \u0390 \u03b0 \u03d0 \u03d1 \u03d5 \u03d6 \u03f0 \u03f1 \u03f5",
    "\u0391\u03bb\u03c6\u03ac\u03b2\u03b7\u03c4\u03bf: \u0391\u0392\u0393\u0394\u0395\u0396\u0397\u0398\u0399\u039a\u039b\u039c\u039d\u039e\u039f\u03a0\u03a1\u03a3\u03a4\u03a5\u03a6\u03a7\u03a8\u03a9",
    "\u03b1\u03b2\u03b3\u03b4\u03b5\u03b6\u03b7\u03b8\u03b9\u03ba\u03bb\u03bc\u03bd\u03be\u03bf\u03c0\u03c1\u03c2\u03c3\u03c4\u03c5\u03c6\u03c7\u03c8\u03c9",
    "\u03a4\u03b9 \u03ba\u03ac\u03bd\u03b5\u03b9\u03c2; (Greek question mark U+037E) \u03a4\u03b9\u037e",
    "\u03ac\u03ad\u03ae\u03af\u03cc\u03cd\u03ce \u0386\u0388\u0389\u038a\u038c\u038e\u038f \u03ca\u03cb \u03aa\u03ab",
]

CYRILLIC = [
    "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440! \u041a\u0430\u043a \u0434\u0435\u043b\u0430?",
    "\u0421\u044a\u0435\u0448\u044c \u0436\u0435 \u0435\u0449\u0451 \u044d\u0442\u0438\u0445 \u043c\u044f\u0433\u043a\u0438\u0445 \u0444\u0440\u0430\u043d\u0446\u0443\u0437\u0441\u043a\u0438\u0445 \u0431\u0443\u043b\u043e\u043a, \u0434\u0430 \u0432\u044b\u043f\u0435\u0439 \u0447\u0430\u044e.",
    "\u0419\u041e\u0413\u0410 \u0439\u043e\u0433\u0430 \u0401\u041b\u041a\u0410 \u0451\u043b\u043a\u0430 \u0438\u0306 \u0435\u0308",
    "\u0423\u043a\u0440\u0430\u0457\u043d\u0430: \u0491\u0430\u043d\u043e\u043a, \u0454\u0434\u043d\u0456\u0441\u0442\u044c, \u0407\u0436\u0430\u043a, \u0490\u0430\u043d\u0434\u0436",
    "\u0411\u0435\u043e\u0433\u0440\u0430\u0434 \u0452\u0430\u043a \u0459\u0443\u0431\u0430\u0432 \u045a\u0435\u0433\u043e\u0432 \u045b\u0435\u0440\u043a\u0430 \u045f\u0435\u043f",
    "\u041c\u043e\u0441\u043a\u0432\u0430-\u0440\u0435\u043a\u0430, \u0421\u0430\u043d\u043a\u0442-\u041f\u0435\u0442\u0435\u0440\u0431\u0443\u0440\u0433, 2024 \u0433.",
    "\u00ab\u041a\u0430\u0432\u044b\u0447\u043a\u0438-\u0451\u043b\u043e\u0447\u043a\u0438\u00bb \u2014 \u0442\u0438\u0440\u0435, \u201e\u043b\u0430\u043f\u043a\u0438\u201c",
    "\u0410\u0411\u0412\u0413\u0414\u0415\u0401\u0416\u0417\u0418\u0419\u041a\u041b\u041c\u041d\u041e\u041f\u0420\u0421\u0422\u0423\u0424\u0425\u0426\u0427\u0428\u0429\u042a\u042b\u042c\u042d\u042e\u042f",
    "\u0430\u0431\u0432\u0433\u0434\u0435\u0451\u0436\u0437\u0438\u0439\u043a\u043b\u043c\u043d\u043e\u043f\u0440\u0441\u0442\u0443\u0444\u0445\u0446\u0447\u0448\u0449\u044a\u044b\u044c\u044d\u044e\u044f",
    "\u0425\u0430\u0440\u0430\u0448\u043e, \u0431\u043b\u0438\u043d! \u0427\u0442\u043e-\u0442\u043e, \u043a\u0442\u043e-\u043d\u0438\u0431\u0443\u0434\u044c.",
    "\u0446\u0440\u0307\u043a\u0432\u0430 \u0445\u0483\u0441 \u0430\u0486 (titlo and church slavonic marks)",
    "\u049a\u0430\u0437\u0430\u049b\u0441\u0442\u0430\u043d \u04e8\u0437\u0431\u0435\u043a \u04ae\u0440\u04af\u043c\u0447\u0438 \u04b0\u043b\u0442",
]

ARABIC_HEBREW = [
    "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645!",
    "\u0627\u0644\u0644\u0651\u064e\u0647\u064f \u0623\u064e\u0643\u0652\u0628\u064e\u0631\u064f \u0628\u0650\u0633\u0652\u0645\u0650 \u0671\u0644\u0644\u0651\u064e\u0670\u0647\u0650",
    "\u0627\u0644\u0639\u0631\u0628\u064a\u0629\u060c \u0627\u0644\u0644\u063a\u0629\u061b \u0647\u0644 \u062a\u062a\u0643\u0644\u0645\u061f",
    "\u0643\u0640\u0640\u0640\u062a\u0627\u0628 (tatweel) \u0661\u0662\u0663 \u0664\u0665\u0666 \u06f1\u06f2\u06f3 digits",
    "\u0641\u0627\u0631\u0633\u06cc: \u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 \u06a9\u062a\u0627\u0628\u200c\u0647\u0627",
    "\u200f\u0639\u0631\u0628\u064a\u200e English \u202bembedded\u202c \u2067isolate\u2069",
    "\u0627\u0631\u062f\u0648: \u067e\u0627\u06a9\u0633\u062a\u0627\u0646 \u0632\u0646\u062f\u06c1 \u0628\u0627\u062f \u06d4",
    "\ufdfd \ufefb \ufef5 \ufe8d\ufe8e presentation forms",
    "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd!",
    "\u05d1\u05bc\u05b0\u05e8\u05b5\u05d0\u05e9\u05b4\u05c1\u05d9\u05ea \u05d1\u05bc\u05b8\u05e8\u05b8\u05d0 \u05d0\u05b1\u05dc\u05b9\u05d4\u05b4\u05d9\u05dd",
    "\u05ea\u05dc\u05be\u05d0\u05d1\u05d9\u05d1 (maqaf) \u05f3 \u05f4 \u05e6\u05d4\u05f4\u05dc",
    "\u05d9\u05b4\u05e9\u05b0\u05c2\u05e8\u05b8\u05d0\u05b5\u05dc \ufb2a \ufb4f ligatures",
    "mixed \u05e2\u05d1\u05e8\u05d9\u05ea and \u0639\u0631\u0628\u064a and English 123",
    ("\u0645\u0627 \u0639\u0627\u0635\u0645\u0629 \u0645\u0635\u0631\u061f", "\u0627\u0644\u0642\u0627\u0647\u0631\u0629 \u0647\u064a \u0639\u0627\u0635\u0645\u0629 \u0645\u0635\u0631 \u0648\u0623\u0643\u0628\u0631 \u0645\u062f\u0646\u0647\u0627."),
]

INDIC_SEA = [
    "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e! \u0906\u092a \u0915\u0948\u0938\u0947 \u0939\u0948\u0902?",
    "\u0939\u093f\u0928\u094d\u0926\u0940 \u092d\u093e\u0937\u093e \u0926\u0947\u0935\u0928\u093e\u0917\u0930\u0940 \u0932\u093f\u092a\u093f \u092e\u0947\u0902 \u0932\u093f\u0916\u0940 \u091c\u093e\u0924\u0940 \u0939\u0948\u0964",
    "\u0915\u093c \u0916\u093c \u0917\u093c \u091c\u093c \u095b \u095e (nukta, precomposed and not)",
    "\u0915\u094d\u200d\u0937 \u0915\u094d\u200c\u0937 \u0915\u094d\u0937 (ZWJ, ZWNJ)",
    "\u0966\u0967\u0968\u0969\u096a\u096b\u096c\u096d\u096e\u096f \u0965 \u0970 \u0901\u0902\u0903",
    "\u0938\u0902\u0938\u094d\u0915\u0943\u0924\u092e\u094d \u0935\u093e\u0915\u094d\u092f\u092e\u094d \u0950",
    "\u09ac\u09be\u0982\u09b2\u09be \u09ad\u09be\u09b7\u09be \u0a2a\u0a70\u0a1c\u0a3e\u0a2c\u0a40 \u0a97\u0ac1\u0a9c\u0ab0\u0abe\u0aa4\u0ac0",
    "\u0ba4\u0bae\u0bbf\u0bb4\u0bcd \u0c24\u0c46\u0c32\u0c41\u0c17\u0c41 \u0c95\u0ca8\u0ccd\u0ca8\u0ca1 \u0d2e\u0d32\u0d2f\u0d3e\u0d33\u0d02",
    "\u0dc3\u0dd2\u0d82\u0dc4\u0dbd \u0f56\u0f7c\u0f51\u0f0b\u0f61\u0f72\u0f42 \u0f00",
    "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35\u0e04\u0e23\u0e31\u0e1a \u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22\u0e44\u0e21\u0e48\u0e21\u0e35\u0e0a\u0e48\u0e2d\u0e07\u0e27\u0e48\u0e32\u0e07\u0e23\u0e30\u0e2b\u0e27\u0e48\u0e32\u0e07\u0e04\u0e33",
    "\u0e01\u0e23\u0e38\u0e07\u0e40\u0e17\u0e1e\u0e21\u0e2b\u0e32\u0e19\u0e04\u0e23 \u0e51\u0e52\u0e53 \u0e2f \u0e46 \u0e5a\u0e5b",
    "\u0eaa\u0eb0\u0e9a\u0eb2\u0e8d\u0e94\u0eb5 \u179f\u17bd\u179f\u17d2\u178f\u17b8 \u1019\u103c\u1014\u103a\u1019\u102c",
    "\u1780\u17d2\u1793\u17bb\u17c6\u179f\u17d2\u179a\u17a1\u17b6\u1789\u17cb\u1797\u17b6\u179f\u17b6\u1781\u17d2\u1798\u17c2\u179a\u17d4",
    "\u1000\u1019\u1039\u1018\u102c\u1037 \u1014\u102d\u102f\u1004\u103a\u1004\u1036 \u104a \u104b",
    "\u12a0\u121b\u122d\u129b \u1361 \u1362 \u13e3\u13b3\u13a9 \u1403\u14c4\u1483\u144e\u1450\u1466",
    "\u10e5\u10d0\u10e0\u10d7\u10e3\u10da\u10d8 \u1c92\u1c90\u1cb0\u1ca2\u1ca3\u1cab\u1c98 \u0540\u0561\u0575\u0565\u0580\u0565\u0576 \u0533\u0561\u057e\u0561\u057c",
    "\u1828\u1823\u1829\u182d\u1823\u182f \u180e \u1820\u180b\u1821 (Mongolian vowel separator, FVS)",
    "\u0f40\u0fb5 \u0f66\u0f90\u0fb1\u0f7a\u0f66 \u0f04\u0f05 \u0f0d \u0f3a\u0f3b",
]

CJK = [
    "\u4f60\u597d\uff0c\u4e16\u754c\uff01\u4eca\u5929\u5929\u6c14\u5f88\u597d\u3002",
    "\u6211\u7231\u5317\u4eac\u5929\u5b89\u95e8\uff0c\u5929\u5b89\u95e8\u4e0a\u592a\u9633\u5347\u3002",
    "\u7e41\u9ad4\u4e2d\u6587\uff1a\u81fa\u7063\u3001\u9999\u6e2f\u3001\u6fb3\u9580\u3002\u300c\u5f15\u865f\u300d\u300e\u96d9\u5f15\u865f\u300f",
    "\u3400\u3401\u4db5\u4dbf (ext A) \u4e00\u9fa5\u9fff (unified)",
    "\U00020000\U00020001\U0002a6d6\U0002a6df (ext B)",
    "\U0002a700\U0002b734\U0002b739\U0002b73f (ext C) \U0002b740\U0002b81d\U0002b81f (ext D)",
    "\U0002b81f\U0002b820\U0002b821\U0002b91e\U0002b91f\U0002b920\U0002b921 (around U+2B820 and U+2B920)",
    "\U0002ceaf\U0002ceb0\U0002ebe0\U0002ebe1 (ext E, F) \U0002ee5d \U00030000\U0003134a\U00031350\U000323af (ext G, H)",
    "\uf900\uf901\ufa0e\ufa6d\ufad9 \U0002f800\U0002fa1d (compatibility ideographs)",
    "\u2f00\u2f01\u2fd5 (Kangxi radicals) \u2e80\u2e99 \u31c0\u31e3 (radicals, strokes)",
    "\u3001\u3002\u3003\u3008\u3009\u300a\u300b\u3010\u3011\u3014\u3015\u301c\u301d\u301e\u3030",
    "\u4e2d\u6587English\u6df7\u5408mixed\u6587\u672c text123\u6570\u5b57",
    "\u3007 \u3021\u3022\u3029 \u3038\u303a \u3005 \u303b (ideographic number zero, Hangzhou numerals, iteration)",
    "\u32a4\u32a5 \u3280\u3281 \u3220\u3221 \u33ff \u337b\u337c (enclosed and squared CJK)",
    "\ufe10\ufe11\ufe12\ufe30\ufe31\ufe35\ufe36\ufe4f\ufe50\ufe51\ufe52 (vertical and small forms)",
    "\u5317\u4eac\u5e02\u6d77\u6dc0\u533a\u4e2d\u5173\u6751\u5927\u885727\u53f7",
    ("\u4e2d\u56fd\u7684\u9996\u90fd\u662f\u54ea\u91cc\uff1f", "\u5317\u4eac\u662f\u4e2d\u534e\u4eba\u6c11\u5171\u548c\u56fd\u7684\u9996\u90fd\uff0c\u4e5f\u662f\u5168\u56fd\u7684\u653f\u6cbb\u548c\u6587\u5316\u4e2d\u5fc3\u3002"),
]

HANGUL_KANA = [
    "\uc548\ub155\ud558\uc138\uc694 \uc138\uacc4! \ud55c\uad6d\uc5b4\ub294 \uc7ac\ubbf8\uc788\uc5b4\uc694.",
    "\ub300\ud55c\ubbfc\uad6d \uc11c\uc6b8\ud2b9\ubcc4\uc2dc \uac15\ub0a8\uad6c",
    "\u1100\u1161\u11a8 \u1112\u1161\u11ab (conjoining jamo) \u3131\u314f\u3134 (compatibility jamo)",
    "\uffa1\uffc2\uffa4 (halfwidth Hangul) \uac00\ud7a3 \ud7b0\ud7fb",
    "\u3053\u3093\u306b\u3061\u306f\u4e16\u754c\uff01\u65e5\u672c\u8a9e\u306e\u6587\u7ae0\u3067\u3059\u3002",
    "\u30ab\u30bf\u30ab\u30ca\u3068\u3072\u3089\u304c\u306a\u3001\u30b3\u30f3\u30d4\u30e5\u30fc\u30bf\u30fc\u3001\u30e9\u30fc\u30e1\u30f3",
    "\uff76\uff80\uff76\uff85 \uff8a\uff9e\uff8a\uff9f \uff7a\uff9d\uff8b\uff9f\uff6d\uff70\uff80\uff70 (halfwidth katakana)",
    "\u304b\u3099 \u304c \u30cf\u309a \u30d1 \u309b\u309c (combining and spacing voiced marks)",
    "\u3086\u3063\u304f\u308a \u30c3 \u30fc \u309d\u309e \u30fd\u30fe \u30fb \u30fc\u30fc\u30fc",
    "\u6771\u4eac\u90fd\u6e0b\u8c37\u533a\u306e\u30b9\u30af\u30e9\u30f3\u30d6\u30eb\u4ea4\u5dee\u70b9",
    "\u3042\u3044\u3046\u3048\u304a\u304b\u304d\u304f\u3051\u3053\u3055\u3057\u3059\u305b\u305d\u305f\u3061\u3064\u3066\u3068",
    "\U0001b000\U0001b001 \U0001b11f\U0001b122 \U0001b150\U0001b164 (kana supplement, small kana)",
    "\u31f0\u31f1\u31ff \u32d0\u32fe \u3300\u3357 (small katakana ext, circled, squared)",
    ("\u65e5\u672c\u306e\u9996\u90fd\u306f\u3069\u3053\u3067\u3059\u304b\uff1f", "\u6771\u4eac\u306f\u65e5\u672c\u306e\u9996\u90fd\u3067\u3042\u308a\u3001\u6700\u5927\u306e\u90fd\u5e02\u3067\u3059\u3002"),
    ("\ud55c\uad6d\uc758 \uc218\ub3c4\ub294?", "\uc11c\uc6b8\uc740 \ub300\ud55c\ubbfc\uad6d\uc758 \uc218\ub3c4\uc774\ub2e4."),
]

EMOJI = [
    "I love it \U0001f60d\U0001f60d\U0001f60d so much!!!",
    "\U0001f600\U0001f603\U0001f604\U0001f601\U0001f606\U0001f605\U0001f602\U0001f923\U0001f972\u263a\ufe0f",
    "\U0001f44d \U0001f44d\U0001f3fb \U0001f44d\U0001f3fc \U0001f44d\U0001f3fd \U0001f44d\U0001f3fe \U0001f44d\U0001f3ff",
    "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466 family \U0001f469\u200d\u2764\ufe0f\u200d\U0001f468 couple",
    "\U0001f3f3\ufe0f\u200d\U0001f308 \U0001f3f4\u200d\u2620\ufe0f \U0001f9d1\U0001f3fd\u200d\U0001f4bb \U0001f469\U0001f3ff\u200d\U0001f52c",
    "\U0001f1fa\U0001f1f8 \U0001f1ec\U0001f1e7 \U0001f1ef\U0001f1f5 \U0001f1e9\U0001f1ea \U0001f1fa\U0001f1f3 flags",
    "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f Scotland (tag sequence)",
    "1\ufe0f\u20e3 #\ufe0f\u20e3 *\ufe0f\u20e3 keycaps \u00a9\ufe0f \u00ae\ufe0f \u2122\ufe0f",
    "\u2764 \u2764\ufe0f \u2764\ufe0e \u2603\ufe0f \u26a1 \u2600 (text and emoji presentation)",
    "emoji\U0001f600glued\U0001f600to\U0001f600words",
    "\U0001fae0\U0001fae8\U0001f9cc\U0001fa75\U0001faaf (newer emoji)",
    "\U0001f004\U0001f0cf\U0001f170\U0001f18e\U0001f201\U0001f21a\U0001f22f",
    ":-) ;-) :D <3 \u00af\\_(\u30c4)_/\u00af (\u256f\u00b0\u25a1\u00b0)\u256f\ufe35 \u253b\u2501\u253b",
    "\U0001f46e\u200d\u2640\ufe0f\U0001f575\ufe0f\u200d\u2642\ufe0f\U0001f9b8\U0001f3fe\u200d\u2640\ufe0f",
    ("Which emoji means love?", "\u2764\ufe0f means love, \U0001f494 means heartbreak."),
]

CONTROLS = [
    "zero\u200bwidth\u200bspace",
    "zero\u200cwidth\u200dnon\u200djoiner",
    "\ufeffbyte order mark at start",
    "byte order\ufeff mark\ufeffinside",
    "vertical\x0btab and form\x0cfeed",
    "next\x85line (NEL)",
    "soft\u00adhy\u00adphen\u00adation",
    "null\x00byte and bell\x07 and escape\x1b[31mred\x1b[0m",
    "delete\x7f char and C1 \x80\x81\x9f controls",
    "replacement \ufffd character \ufffd\ufffd",
    "word\u2060joiner and invisible\u2062times\u2063separator\u2064plus",
    "bidi \u202aLRE\u202c \u202bRLE\u202c \u202dLRO\u202c \u202eRLO\u202c \u2066LRI\u2069 \u2067RLI\u2069 \u2068FSI\u2069",
    "left\u200eto\u200fright marks \u061c ALM",
    "mongolian\u180evowel\u180eseparator",
    "interlinear \ufff9annotation\ufffaanchor\ufffbterminator",
    "shorthand \U0001bca0\U0001bca1\U0001bca2\U0001bca3 format controls",
    "music \U0001d173\U0001d174\U0001d175\U0001d176\U0001d177\U0001d178\U0001d179\U0001d17a format",
    "\u0600\u0601\u0602\u0603\u0604\u0605 \u06dd \u070f \u0890 \u08e2 \U000110bd \U000110cd prepended marks",
    "private use \ue000 \uf8ff \U000f0000 \U000ffffd \U00100000 \U0010fffd",
    "private\ue000glued\uf8ffuse",
    "unassigned \u0378 \u0379 \u0380 \u2fff \U0002fffd \U000e0080",
    "noncharacters \ufdd0 \ufdef \ufffe \uffff \U0001fffe \U0010ffff",
    "variation\ufe00selectors\ufe0f and \U000e0100 \U000e01ef",
    "combining grapheme joiner a\u034fb",
    "\u200b",
    "\u200b\u200c\u200d\ufeff",
    "\x00",
    "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f",
    "a\x00b\x01c\x1fd\x7fe\x9ff",
    "\ufffd",
    "tags \U000e0001 \U000e0020 \U000e0041 \U000e007f",
    "line\u2028separator and paragraph\u2029separator",
    "\u00ad\u00ad\u00ad",
    "hello\u200b[SEP]\u200bworld",
    ("\u200bquestion\u200b?", "\ufeffcontext\u00adwith\x0bcontrols"),
]

WHITESPACE = [
    "",
    " ",
    "  ",
    "\t",
    "\t\t \t",
    "\n",
    "\r\n",
    "\u00a0",
    "\u3000",
    "\u2028",
    " \u00a0\u3000\u2003 ",
    "no\u00a0break\u00a0space",
    "ideographic\u3000space\u3000\u4e2d\u3000\u6587",
    "en\u2002em\u2003thin\u2009hair\u200a figure\u2007 punctuation\u2008 six\u2006 four\u2005 three\u2004 quad\u2000\u2001",
    "narrow\u202fno-break medium\u205fmath ogham\u1680space",
    "line\u2028separator",
    "para\u2029separator",
    "mixed \t\n\r\u00a0\u2028\u3000 whitespace",
    "\u00a0leading nbsp and trailing nbsp\u00a0",
    "\u3000\u3000\u3000\u4e00\u3000\u3000",
    "x\u0085y",
    "\u001c\u001d\u001e\u001f separators",
    ("", ""),
    ("", "empty first"),
    ("empty second", ""),
    (" ", "\t"),
    ("\u3000", "\u00a0"),
]

SPECIALS = [
    "[CLS] hello [SEP] world [SEP]",
    "hello[SEP]world",
    "[CLS][SEP][PAD][UNK][MASK]",
    "The capital of France is [MASK].",
    "The [MASK] sat on the [MASK]ed mat.",
    "x[MASK]y [MASK]s re[MASK]",
    "[mask] [Mask] [MASK] [ MASK ] [MASK",
    "[cls] [sep] [pad] [unk] [Cls] [SEP ] [ SEP]",
    "[[CLS]] [[SEP] ] [[MASK]]",
    "[UNK] is the unknown token, [PAD] is padding",
    "[PAD][PAD][PAD] padded",
    "\u00e9[CLS]\u00e9 \u00c9[SEP]\u00c9",
    "[CLS]\u200b[SEP]",
    "[unused0] [unused1] [unused99] [unused100]",
    "[SEP\u200b] [CL\u00adS] [MA\ufeffSK]",
    "\uff3bCLS\uff3d \uff3bMASK\uff3d [\uff23\uff2c\uff33] fullwidth brackets",
    "##ing ##s ## # ### word##piece",
    "<s> </s> <pad> <unk> <mask> <|endoftext|>",
    "[CLS]" * 20,
    "[MASK]" + "a" * 100 + "[MASK]",
    "[MASK]" + "a" * 101,
    "A[SEP]B[SEP]C[SEP]D",
    ("[CLS] question [SEP]", "[SEP] context [CLS]"),
    ("What is [MASK]?", "[MASK] is a special token."),
    ("[mask]", "[MASK]"),
]

PUNCTUATION = [
    "!!!???...",
    "Wait... what?!?! No way!!!1!",
    "\u2014em dash\u2014 \u2013en dash\u2013 - hyphen \u2010 \u2011 \u2012 \u2015",
    "\u00ab\u00bb \u201c\u201d \u201e\u201f \u2018\u2019 \u201a\u201b \u2039\u203a \u300c\u300d",
    "\u00bfQu\u00e9? \u00a1S\u00ed! \u203d \u2e18 \u2e2e",
    "\u2026 \u2025 \u2024 \u22ef \u205d \u205e",
    "\u00a7 \u00b6 \u2020 \u2021 \u2022 \u2023 \u2043 \u204c \u204d \u2030 \u2031 \u2032 \u2033 \u2034 \u2057",
    "$ + < = > ^ ` | ~ (ASCII symbols) \u00a2 \u00a3 \u00a5 \u20ac \u20b9 \u20bd \u20bf (currency)",
    "\u00a9 \u00ae \u2122 \u2120 \u00b0 \u2103 \u2109 \u00b5 \u00b7 \u00d7 \u00f7 \u00b1 \u00ac \u00a6 \u00a8 \u00af \u00b4 \u00b8",
    "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
    "a!b\"c#d$e%f&g'h(i)j*k+l,m-n.o/p:q;r<s=t>u?v@w[x\\y]z^_`{|}~",
    "...---...",
    "(((nested (parentheses))))",
    "\u3010\u3011\u3016\u3017\u3018\u3019\u301a\u301b \uff08\uff09\uff3b\uff3d\uff5b\uff5d\uff5f\uff60",
    "\u055a\u055b\u055c\u055d\u055e\u055f \u0589 \u05be \u05c0 \u05c3 \u05f3 \u05f4 \u060c \u061b \u061f \u066a \u066b \u066c \u066d \u06d4",
    "\u0964 \u0965 \u0970 \u0df4 \u0e4f \u0e5a \u0e5b \u0f04 \u0f14 \u104a \u104b \u10fb \u1360 \u1361 \u1362 \u166e \u17d4 \u17d5 \u1800 \u1802",
    "\u2e00\u2e01\u2e02\u2e0e\u2e0f\u2e16\u2e17\u2e19\u2e1b\u2e1e\u2e1f\u2e2a\u2e30\u2e3a\u2e3b\u2e40\u2e42\u2e4f\u2e52\u2e5d",
    "\ua4fe\ua4ff \ua60d\ua60e\ua60f \ua673 \ua67e \ua6f2 \ua874 \ua8ce \ua92e \ua9c1 \uaa5c \uaade \uabeb",
    "\U00010100\U00010101\U0001039f\U000103d0\U0001056f\U00010857\U0001091f\U0001093f\U00010a50\U00011047\U000110bb\U00016a6e\U0001bc9f\U0001e95e",
    "\u00a1\u00a7\u00ab\u00b6\u00b7\u00bb\u00bf \u037e \u0387 \u2016\u2017 \u2027 \u2030 \u203b \u203c \u2044 \u2052 \u2053 \u205b",
    "\u2010\u2011\u2012\u2013\u2014\u2015 \u2e3a\u2e3b \u301c \u3030 \u30a0 \ufe31\ufe32 \ufe58 \ufe63 \uff0d",
    "\u0f0d\u0f0e\u0f0f\u0f10\u0f11\u0f12 \u1cc0\u1cc7 \u1cd3 \u2cf9\u2cfc\u2cfe\u2cff",
    "***bold*** ___italic___ ~~strike~~ `code` ```block```",
    "=-=-=-=-=-=-= +-+-+-+ |_|_|_| /\\/\\/\\ <><><>",
    "\u2500\u2502\u250c\u2510\u2514\u2518\u251c\u2524\u252c\u2534\u253c \u2550\u2551\u2554\u2557 \u2588\u2591\u2592\u2593",
]

NUMBERS = [
    "3.14159 2.71828 1.41421 0.5772",
    "1,000,000 and 1.000.000 and 1 000 000 and 1\u202f000\u202f000",
    "1e-10 6.022e23 -273.15 +42 0x1F 0b1010 0o777",
    "\u00bd \u00bc \u00be \u2153 \u2154 \u215b \u2189 \u2150 (vulgar fractions)",
    "\u2460\u2461\u2462\u2473 \u2474\u2475 \u2488\u2489 \u24ea \u2776\u2777 \u278a (circled and parenthesized)",
    "x\u00b2 + y\u00b3 = z\u00b9 H\u2082O CO\u2082 x\u207f a\u2080\u2081\u2082",
    "\u2160 \u2161 \u2162 \u216b \u216c \u216f \u2170 \u2171 \u217b \u2180 \u2183 \u2184 (roman numerals)",
    "\uff10\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19 fullwidth digits",
    "\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669 \u06f0\u06f1\u06f2 \u0966\u0967\u0968 \u09e6\u09e7 \u0e50\u0e51\u0e52 \u1040\u1041",
    "\u0663\u066b\u0661\u0664 (Arabic decimal separator) \u0661\u066c\u0660\u0660\u0660",
    "\U0001d7ce\U0001d7cf\U0001d7d0 \U0001d7d8\U0001d7d9 \U0001d7ec\U0001d7ed (mathematical digits)",
    "\U00010107\U00010108 \U00012400 \U0001d360\U0001d361 \U0001f100\U0001f101\U0001f10a (other numbers)",
    "2024-06-11T12:34:56Z 12/31/1999 31.12.1999 23:59:59.999",
    "+1 (555) 123-4567 +44 20 7946 0958",
    "ISBN 978-3-16-148410-0 SKU#A1B2C3 v1.2.3-rc.4+build.5",
    "123456789012345678901234567890123456789012345678901234567890",
    "0.000000000000000000000000000001",
    "\u4e00\u4e8c\u4e09\u56db\u4e94\u516d\u4e03\u516b\u4e5d\u5341\u767e\u5343\u4e07\u5104 \u58f1\u5f10\u53c2",
    "\u0bf0\u0bf1\u0bf2 \u0d70\u0d71 \u1372\u137c \u2cfd \u3192\u3195 \ua830\ua835",
]

URLS_CODE = [
    "https://example.com/path/to/page?q=hello+world&lang=en#section-2",
    "http://user:pass@sub.example.co.uk:8080/a/b.html",
    "ftp://files.example.org/pub/file-1.2.3.tar.gz",
    "Visit www.example.com or mail first.last+tag@example.com today.",
    "https://\u4f8b\u3048.\u30c6\u30b9\u30c8/\u30d1\u30b9 and https://xn--r8jz45g.xn--zckzah/",
    "C:\\Users\\Alice\\Documents\\report (final).docx",
    "/usr/local/bin/python3 ~/.bashrc ../relative/path ./file.txt",
    "def f(x): return x**2 if x > 0 else -x  # comment",
    "int main(int argc, char** argv) { return argc > 1 ? 0 : 1; }",
    "std::vector<std::pair<int, std::string>> v{{1, \"a\"}};",
    "for (auto& [k, v] : map) { sum += v; }  // C++17",
    "SELECT name, COUNT(*) FROM users WHERE age >= 18 GROUP BY name HAVING COUNT(*) > 1;",
    "{\"key\": \"value\", \"list\": [1, 2.5, true, null], \"nested\": {\"a\": {}}}",
    "<div class=\"container\" id='main'><p>Hello &amp; goodbye&nbsp;</p></div>",
    "const re = /^([a-z0-9_\\.-]+)@([\\da-z\\.-]+)\\.([a-z\\.]{2,6})$/;",
    "\\frac{\\partial L}{\\partial \\theta} = \\sum_{i=1}^{N} \\nabla_\\theta \\ell(x_i)",
    "fn main() { let v: Vec<u8> = vec![0; 16]; println!(\"{:?}\", v); }",
    "x->y; a::b; c=>d; e<=f; g!=h; i==j; k&&l; m||n; o>>=p; q<<r",
    "git commit -m \"fix: handle CRLF\" && git push origin main --force-with-lease",
    "pip install tokenizers==0.23.3 --no-deps",
    "camelCaseIdentifier snake_case_identifier SCREAMING_SNAKE kebab-case-id",
    "__init__ __name__ == \"__main__\" self._private",
    "0xDEADBEEF 0xcafebabe 1_000_000 3.0f 2.5e-3L",
    "@decorator\ndef method(self, *args, **kwargs) -> None:\n    pass",
    "if (a < b && c > d) { x = a ? b : c; }",
    "#include <iostream>\n#define MAX(a,b) ((a)>(b)?(a):(b))",
    "email@\u00e9xample.com caf\u00e9.fr/r\u00e9sum\u00e9",
    "SGVsbG8gd29ybGQhIFRoaXMgaXMgYmFzZTY0IGVuY29kZWQgdGV4dC4=",
    "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0 (sha1)",
    "$HOME %PATH% ${var:-default} $(command) `backticks`",
]

CASE_TRICKS = [
    "\u0130stanbul ISPARTA \u0131spanak \u0130i I\u0131 D\u0130YARBAKIR",
    "\u0130" * 10,
    "\u0130" * 50,
    "\u0130" * 51,
    "i\u0307 I\u0307 \u0130\u0301 \u0131\u0301",
    "\u1e9e\u1e9e\u1e9e STRASSE stra\u00dfe",
    "\ufb01nancial \ufb02ow \ufb00 \ufb03 \ufb04 \ufb05 \ufb06 \u0132 \u0133 \u0152 \u0153 \u00c6 \u00e6",
    "\ufb13\ufb14\ufb15\ufb16\ufb17 (Armenian ligatures) \u0587",
    "\uff28\uff25\uff2c\uff2c\uff2f \uff57\uff4f\uff52\uff4c\uff44\uff01 \uff08\u62ec\u5f27\uff09",
    "\uff48\uff54\uff54\uff50\uff1a\uff0f\uff0f\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45\uff0e\uff43\uff4f\uff4d",
    "\uff21\uff22\uff23\uff24\uff25\uff26\uff27 \uff41\uff42\uff43\uff44\uff45\uff46\uff47 \uff01\uff02\uff03\uff04\uff05\uff06\uff07",
    "\U0001d400\U0001d401\U0001d402 \U0001d44e\U0001d44f\U0001d450 \U0001d538\U0001d539 \U0001d56c\U0001d56d \U0001d5a0\U0001d5a1 (math alphanumerics)",
    "\u2102 \u210d \u2115 \u2119 \u211a \u211d \u2124 \u210e \u2113 \u2118 \u212e \u2135 \u2136",
    "\u24b6\u24b7\u24b8 \u24d0\u24d1\u24d2 \U0001f130\U0001f131 \U0001f150\U0001f151 (enclosed letters)",
    "\u1d2c\u1d2e\u1d30 \u1d43\u1d47\u1d9c \u02b0\u02b2\u02b3 \u2090\u2091\u2092 (modifier letters)",
    "\U00010400\U00010401\U00010428\U00010429 \U00010c80\U00010cc0 \U000118a0\U000118c0 \U00016e40\U00016e60 \U0001e900\U0001e922",
    "\u2c00\u2c30 \u2c60\u2c61 \u2c80\u2c81 \ua640\ua641 \ua722\ua723 \ua7c0\ua7c1 \uab70\u13a0",
    "\u10a0\u2d00 \u1c90\u10d0 \u13f8\u13f0 \u1e00\u1e01 \u0370\u0371 \u03cf\u03d7",
    "\u023a\u2c65 \u023e\u2c66 \u2c6f\u0250 \ua78d\u0265 \ua7aa\u0266 \ua7ae\u026a \ua7b0\u029e",
    "\u0149 \u01f0 \u0390 \u03b0 \u0587 \u1e96 \u1e97 \u1e98 \u1e99 \u1e9a \u1f50 \u1fb6 \u1fe4",
    "TITLE Title title tItLe",
    "\u01c5ungla \u01c8jubljana \u01cbjego\u0161",
    "HELLO\u0301 WORLD\u0308",
    "\u212a\u212b\u2126 \u03f4 \u1e9e \u2132 \u2183 \u2c7e \u2c7f",
]

COMBINING = [
    "Z\u0337\u0322\u031b\u0321\u0358\u035aa\u0336\u0315\u0318l\u0337\u0330g\u0335\u0326\u032eo\u0336 \u0338t\u0334\u031ce\u0335x\u0337t",
    "a\u0300\u0301\u0302\u0303\u0304\u0305\u0306\u0307\u0308\u0309\u030a\u030b\u030c\u030d\u030e\u030f",
    "\u0301\u0301\u0301 leading combining marks",
    "\u0301",
    "a \u0301 b \u0308 c",
    "e\u20dd \u20dd\u20de\u20df\u20e0 (enclosing marks, Me) a\u20e3",
    "a\u0488\u0489 (Cyrillic millions sign, Me)",
    "\u0903 \u093e \u093f \u0940 (spacing marks, Mc) \u0941 \u0942 (nonspacing, Mn)",
    "o\u0338 =\u0338 <\u0338 (combining long solidus)",
    "q\u0307\u0323 \u1e0b\u0323 \u1e0d\u0307 (canonical reordering)",
    "\u1ab0\u1ab1 \u1dc0\u1dc1 \u20d0\u20d1 \ufe20\ufe21 \U0001d165\U0001d166\U0001d167",
    "\u0345\u0345 \u03b9\u0345 \u0391\u0345",
    "a\u034fb c\u035cd e\u0361f",
    "\u0e01\u0e34\u0e48\u0e07 \u0e01\u0e48\u0e34\u0e07 (Thai marks in either order)",
    "\u1100\u1161\u11a8\u11a8 \u1100\u1100\u1161 \u1161\u11a8 (jamo sequences)",
    "\u3099\u309a alone \u304b\u3099\u3099",
    "\u093c\u094d\u200d\u200c standalone Indic marks",
    "a\U0001e8d0b\U0001e944c (Mende Kikakui, Adlam marks)",
]

MATH = [
    "\u2200x\u2208\u211d: x\u00b2 \u2265 0",
    "\u2211\u1d62 a\u1d62 = \u222b\u2080^\u221e f(x) dx \u2202f/\u2202x \u2207\u00b7F",
    "\u2264 \u2265 \u2260 \u2248 \u2261 \u2262 \u221d \u221e \u2205 \u2229 \u222a \u2282 \u2283 \u2286 \u2287",
    "\u2192 \u2190 \u2191 \u2193 \u2194 \u21d2 \u21d4 \u21a6 \u27f6 \u27f9 \u2934 \u2b06",
    "\u221a2 \u221b8 \u221c16 \u2218 \u2219 \u22c5 \u2217 \u2295 \u2297 \u22a4 \u22a5 \u22a2 \u22a8",
    "\u2135\u2080 \u2136\u2081 \u2127 \u2129 \u212d \u2111 \u211c \u2118",
    "\u00ac(p \u2227 q) \u2194 (\u00acp \u2228 \u00acq) \u22bb \u22bc \u22bd",
    "\u27e8\u03c8|\u03c6\u27e9 \u2016x\u2016 \u230ax\u230b \u2308x\u2309 \u27e6a\u27e7 \u2983\u2984",
    "\u2a00 \u2a01 \u2a02 \u2a0c \u2a15 \u2a7d \u2a7e \u2aaf \u2ab0",
    "\U0001d6a8\U0001d6c2 \U0001d6fc\U0001d716 \U0001d7ca\U0001d7cb (math Greek, digamma)",
    "f(x) = {x\u00b2 if x \u2265 0; \u2212x otherwise}",
    "\u2212 \u2213 \u2214 \u2215 \u2216 \u2044 \u2236 \u2237 \u2234 \u2235",
]

LONG_WORDS = [
    "a" * 99,
    "a" * 100,
    "a" * 101,
    "b" * 100 + " " + "c" * 101,
    "x" * 500,
    "word " + "y" * 100 + " word",
    "word " + "y" * 101 + " word",
    "\u00e9" * 100,  # precomposed: 100 either way
    "\u00e9" * 101,
    "e\u0301" * 50,  # 100 code points; uncased strips the marks
    "e\u0301" * 51,
    "e\u0301" * 100,  # 200 code points: cased [UNK], uncased 100
    "\u0431" * 100,
    "\u0431" * 101,
    "\u0416" * 100,
    "\u00c0" * 60 + "b" * 40,
    "\u0130" * 100,
    "ab" * 50,
    "ab" * 50 + "c",
    "supercalifragilistic" * 5,
    "supercalifragilistic" * 5 + "s",
    "a" * 50 + "\u200b" * 10 + "a" * 50,  # deleted characters do not count
    "a" * 50 + "\u200b" * 10 + "a" * 51,
    "a" * 60 + "." + "a" * 60,  # punctuation splits it
    "a" * 98 + "\ufb01",
    "x" * 100 + "[MASK]" + "x" * 100,
    "\u4e00" * 120,  # CJK splits into single characters
    "\U0001f600" * 101,
    "\u0e01" * 100,
    "\u0e01" * 101,
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\u00ad\u00ad",
    "\u00c9" * 99 + "\u0301",
    "\u00df" * 100,
    "\u1e9e" * 101,
]

PAIRS = [
    ("What is the capital of France?", "Paris is the capital and most populous city of France."),
    ("When was the Eiffel Tower built?", "The Eiffel Tower was constructed from 1887 to 1889 as the centerpiece of the 1889 World's Fair."),
    ("Who wrote Hamlet?", "Hamlet is a tragedy written by William Shakespeare sometime between 1599 and 1601."),
    ("How many legs does a spider have?", "Spiders are air-breathing arthropods that have eight legs, chelicerae with fangs generally able to inject venom, and spinnerets that extrude silk."),
    ("short", "a much longer second text that goes on and on and on, well past sixteen tokens, to make truncation cut it"),
    ("a much longer first text that goes on and on and on, well past sixteen tokens, to make truncation cut it", "short"),
    ("both texts are long enough that truncation has to cut both of them down", "and the second one is about as long as the first one, give or take"),
    ("Quelle est la capitale de l'Allemagne ?", "Berlin est la capitale et la plus grande ville d'Allemagne."),
    ("\u00bfCu\u00e1l es el r\u00edo m\u00e1s largo?", "El Amazonas es el r\u00edo m\u00e1s largo y caudaloso del mundo."),
    ("\u041a\u0442\u043e \u043d\u0430\u043f\u0438\u0441\u0430\u043b \u00ab\u0412\u043e\u0439\u043d\u0443 \u0438 \u043c\u0438\u0440\u00bb?", "\u0420\u043e\u043c\u0430\u043d \u043d\u0430\u043f\u0438\u0441\u0430\u043b \u041b\u0435\u0432 \u041d\u0438\u043a\u043e\u043b\u0430\u0435\u0432\u0438\u0447 \u0422\u043e\u043b\u0441\u0442\u043e\u0439."),
    ("tab\tinside", "the\tsecond\ttext"),
    ("same", "same"),
    ("a", "b"),
    ("x " * 30, "y " * 30),
    ("x " * 7, "y " * 7),
    ("x " * 6, "y " * 7),
    ("x " * 13, "y"),
    ("x", "y " * 13),
    ("x " * 12, "y " * 2),
    ("x " * 300, "y " * 300),
]


# ---------------------------------------------------------------------------------------
# Word pools for generated lines: realistic words per script, plus "spice" that is put
# between or inside words.

WORDS = {
    "en": ("the of and to in is was for on with as by at from that this which it be are an or were "
           "people government university research language model network training data learning "
           "algorithm performance computer science history music film river mountain city country "
           "Running jumped quickly beautiful unbelievably reconsideration misunderstanding "
           "Washington Einstein Tokyo Amazon Google NASA COVID-19 GPT-4 Wi-Fi e-commerce "
           "don't it's we're they'll I'd wouldn't").split(),
    "fr": ("le la les des une est \u00e9t\u00e9 \u00e9l\u00e8ve fen\u00eatre ch\u00e2teau for\u00eat "
           "na\u00eftre No\u00ebl c\u0153ur \u0153uvre \u00e7a d\u00e9j\u00e0 o\u00f9 "
           "aujourd'hui qu'il l'\u00e9cole").split(),
    "de": ("der die das und ist \u00fcber M\u00e4dchen \u00f6ffnen Gr\u00fc\u00dfe Stra\u00dfe "
           "Fu\u00dfball wei\u00df Donaudampfschifffahrtsgesellschaft \u00c4rger \u00dcbung \u00d6l").split(),
    "es": ("el la los que espa\u00f1ol ni\u00f1o coraz\u00f3n canci\u00f3n \u00e1rbol "
           "ping\u00fcino \u00bfqu\u00e9? \u00a1s\u00ed! m\u00e1s tambi\u00e9n").split(),
    "vi": ("Vi\u1ec7t Nam ng\u01b0\u1eddi \u0111\u01b0\u1eddng ph\u1ed1 H\u00e0 N\u1ed9i "
           "th\u00e0nh ph\u1ed1 H\u1ed3 Ch\u00ed Minh ti\u1ebfng n\u00f3i").split(),
    "el": ("\u03ba\u03b1\u03b9 \u03c4\u03bf \u03b5\u03af\u03bd\u03b1\u03b9 \u0391\u03b8\u03ae\u03bd\u03b1 "
           "\u03ba\u03cc\u03c3\u03bc\u03bf\u03c2 \u039f\u0394\u03a5\u03a3\u03a3\u0395\u0391\u03a3 "
           "\u03c8\u03c5\u03c7\u03ae \u03bb\u03cc\u03b3\u03bf\u03c2 \u03a3\u03a9\u039a\u03a1\u0391\u03a4\u0397\u03a3").split(),
    "ru": ("\u0438 \u0432 \u043d\u0435 \u043d\u0430 \u0447\u0442\u043e \u041c\u043e\u0441\u043a\u0432\u0430 "
           "\u0420\u043e\u0441\u0441\u0438\u044f \u0451\u043b\u043a\u0430 \u0415\u0429\u0401 "
           "\u0432\u043e\u0434\u0430 \u0445\u043e\u0440\u043e\u0448\u043e \u0443\u043d\u0438\u0432\u0435\u0440\u0441\u0438\u0442\u0435\u0442 "
           "\u0439\u043e\u0433\u0443\u0440\u0442 \u0441\u044a\u0435\u0437\u0434 \u0421\u041e\u042e\u0417").split(),
    "uk": ("\u0423\u043a\u0440\u0430\u0457\u043d\u0430 \u041a\u0438\u0457\u0432 \u0491\u0430\u043d\u043e\u043a "
           "\u0454\u0432\u0440\u043e\u043f\u0435\u0439\u0441\u044c\u043a\u0438\u0439 \u0457\u0436\u0430\u043a").split(),
    "ar": ("\u0641\u064a \u0645\u0646 \u0639\u0644\u0649 \u0627\u0644\u0642\u0627\u0647\u0631\u0629 "
           "\u0645\u0643\u062a\u0628\u0629 \u0627\u0644\u0645\u064f\u0639\u064e\u0644\u0651\u0650\u0645 "
           "\u0643\u062a\u0627\u0628 \u0627\u0644\u0631\u064a\u0627\u0636 \u0633\u064e\u0644\u0627\u0645").split(),
    "fa": ("\u0645\u06cc\u200c\u0631\u0648\u0645 \u062a\u0647\u0631\u0627\u0646 \u0641\u0627\u0631\u0633\u06cc "
           "\u06a9\u062a\u0627\u0628\u200c\u0647\u0627 \u06af\u0641\u062a\u06af\u0648").split(),
    "he": ("\u05e9\u05dc\u05d5\u05dd \u05d9\u05e8\u05d5\u05e9\u05dc\u05d9\u05dd \u05ea\u05dc\u05be\u05d0\u05d1\u05d9\u05d1 "
           "\u05e1\u05b5\u05e4\u05b6\u05e8 \u05de\u05d7\u05e9\u05d1 \u05d0\u05d5\u05e0\u05d9\u05d1\u05e8\u05e1\u05d9\u05d8\u05d4").split(),
    "hi": ("\u092d\u093e\u0930\u0924 \u0926\u093f\u0932\u094d\u0932\u0940 \u092e\u0941\u0902\u092c\u0908 "
           "\u0935\u093f\u091c\u094d\u091e\u093e\u0928 \u0915\u094d\u0937\u0947\u0924\u094d\u0930 "
           "\u0939\u093f\u0928\u094d\u0926\u0940 \u0938\u0930\u0915\u093e\u0930 \u0964").split(),
    "th": ("\u0e1b\u0e23\u0e30\u0e40\u0e17\u0e28\u0e44\u0e17\u0e22 \u0e01\u0e23\u0e38\u0e07\u0e40\u0e17\u0e1e "
           "\u0e20\u0e32\u0e29\u0e32 \u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35 \u0e02\u0e2d\u0e1a\u0e04\u0e38\u0e13").split(),
    "zh": ("\u4e2d\u56fd \u5317\u4eac \u4e0a\u6d77 \u5927\u5b66 \u4eba\u5de5\u667a\u80fd \u8bed\u8a00\u6a21\u578b "
           "\u7e41\u9ad4 \u5b57 \u3002 \uff0c \u201c\u5f15\u53f7\u201d \U00020bb7\u91ce\u5bb6").split(),
    "ja": ("\u65e5\u672c \u6771\u4eac \u3072\u3089\u304c\u306a \u30ab\u30bf\u30ab\u30ca \u30b3\u30f3\u30d4\u30e5\u30fc\u30bf "
           "\u3067\u3059 \u307e\u3059 \u3002 \u3001 \uff76\uff80\uff76\uff85 \u30fc").split(),
    "ko": ("\ud55c\uad6d \uc11c\uc6b8 \ub300\ud559\uad50 \uc5b8\uc5b4 \ubaa8\ub378 \uc548\ub155\ud558\uc138\uc694 "
           "\uac10\uc0ac\ud569\ub2c8\ub2e4 \ud55c\uae00").split(),
    "tr": ("\u0130stanbul \u0130zmir \u0131\u015f\u0131k \u00e7ocuk \u015feker \u011fda "
           "D\u0130YARBAKIR I\u011eDIR \u00fc\u00e7 \u00f6\u011frenci").split(),
}

SPICE = [
    "\u200b", "\u200c", "\u200d", "\ufeff", "\u00ad", "\x0b", "\x0c", "\x85", "\u2060", "\u180e",
    "\u00a0", "\u3000", "\u2028", "\u2029", "\u2003", "\u202f", "\t", "\n", "\r",
    "\u0301", "\u0308", "\u0327", "\u0345", "\u20dd", "\ufe0f", "\U000e0100",
    "\U0001f600", "\U0001f44d\U0001f3fd", "\U0001f468\u200d\U0001f4bb", "\U0001f1eb\U0001f1f7",
    "[CLS]", "[SEP]", "[MASK]", "[UNK]", "[PAD]", "[mask]", "[Sep]",
    "!", "?", "...", "\u2014", "\u00bf", "\u00ab", "\u00bb", "\u300c", "\u300d", "$", "^", "`", "~", "|",
    "\u20ac", "\u00a9", "\u00b0", "\u2122", "\u2022", "\u2026", "\u3001", "\u3002",
    "\ufb01", "\u0130", "\u0131", "\u00df", "\u1e9e", "\u03a3", "\u03c2", "\u212a", "\u01c5",
    "\uff21", "\uff41", "\uff11", "\uff01", "\u00bd", "\u00b2", "\u2168", "\u0663",
    "\u4e00", "\U0002b820", "\U0002b920", "\U00030000", "\uf900", "\ue000", "\ufffd", "\x00", "\x7f", "\x9f",
]

SEED = 20240611


def generated_lines(rng):
    """Sentences from the word pools, with spice put between and inside words, case
    changes, numbers, URLs and special tokens; some as pairs. Deterministic for SEED."""
    langs = sorted(WORDS)
    out = []

    def sentence(lo, hi):
        words = []
        mix = rng.sample(langs, rng.choice([1, 1, 1, 2, 3]))
        for _ in range(rng.randint(lo, hi)):
            w = rng.choice(WORDS[rng.choice(mix)])
            r = rng.random()
            if r < 0.08:
                w = w.upper()
            elif r < 0.12:
                w = w.title()
            elif r < 0.14:
                w = w.lower()
            if rng.random() < 0.12:  # spice inside the word
                cut = rng.randint(0, len(w))
                w = w[:cut] + rng.choice(SPICE) + w[cut:]
            words.append(w)
            if rng.random() < 0.10:
                words.append(rng.choice(SPICE))
            if rng.random() < 0.04:
                words.append(str(rng.randint(0, 10 ** rng.randint(1, 9))))
        sep = rng.choice([" ", " ", " ", " ", "  ", "\t", "\u00a0", ""])
        text = sep.join(words)
        if rng.random() < 0.3:
            text += rng.choice([".", "!", "?", "...", "\u3002", "\u061f", "\u0964", " :)", "!!!"])
        return text

    for i in range(1500):
        kind = i % 10
        if kind < 6:
            out.append(sentence(1, 24))
        elif kind < 8:
            out.append((sentence(2, 12), sentence(4, 40)))
        elif kind == 8:
            out.append(sentence(30, 120))  # long: truncation and padding bite
        else:
            # a run of random pool characters with no spaces: one long word, or many
            chars = "".join(rng.choice(WORDS[rng.choice(langs)]) for _ in range(rng.randint(1, 8)))
            out.append(chars)
    return out


def sweep_lines():
    """Every code point of the BMP (64 a line, space-separated, surrogates skipped) and of
    plane 1 (128 a line), blocks of planes 2, 3, 14, 15 and 16, and the diverse part of the
    BMP again glued in 8s: the normalizer's and pre-tokenizer's tables, each character
    alone, and how neighbours split."""
    out = []

    def spaced(lo, hi, per_line):
        for start in range(lo, hi, per_line):
            cps = [cp for cp in range(start, min(start + per_line, hi)) if not 0xD800 <= cp <= 0xDFFF]
            if cps:
                out.append(" ".join(chr(cp) for cp in cps))

    spaced(0x0000, 0x10000, 64)
    spaced(0x10000, 0x20000, 128)
    for lo, hi in [(0x20000, 0x20080), (0x2A6C0, 0x2A740), (0x2B700, 0x2B760), (0x2B800, 0x2B940),
                   (0x2CE80, 0x2CF00), (0x2EBC0, 0x2EC00), (0x2EE40, 0x2EE80), (0x2F800, 0x2F840),
                   (0x2FA00, 0x2FA40), (0x2FFC0, 0x30040), (0x31340, 0x31380), (0x323A0, 0x323C0),
                   (0xE0000, 0xE0080), (0xE0100, 0xE01F0), (0xF0000, 0xF0040), (0xFFFC0, 0x100040),
                   (0x10FFC0, 0x110000)]:
        spaced(lo, hi, 64)
    for start in range(0x0000, 0x3400, 64):
        cps = [chr(cp) for cp in range(start, start + 64)]
        out.append(" ".join("".join(cps[i:i + 8]) for i in range(0, 64, 8)))
    return out


def build_corpus():
    hand = (BASIC + LATIN_ACCENTS + GREEK + CYRILLIC + ARABIC_HEBREW + INDIC_SEA + CJK + HANGUL_KANA +
            EMOJI + CONTROLS + WHITESPACE + SPECIALS + PUNCTUATION + NUMBERS + URLS_CODE + CASE_TRICKS +
            COMBINING + MATH + LONG_WORDS + PAIRS)
    # Every hand-written single line also as a pair with a fixed partner, both ways round,
    # so the pair path sees every kind of text.
    rng = random.Random(SEED)
    entries = [("hand", x) for x in hand]
    singles = [x for x in hand if isinstance(x, str)]
    for i, x in enumerate(singles):
        partner = singles[(i * 7 + 3) % len(singles)]
        entries.append(("hand-pair", (x, partner) if i % 2 == 0 else (partner, x)))
    entries += [("generated", x) for x in generated_lines(rng)]
    entries += [("sweep", x) for x in sweep_lines()]
    return entries


# Characters written as \u escapes in corpus.jsonl although JSON allows them raw: they are
# invisible, break lines in some editors (U+0085, U+2028, U+2029), or look like a space.
def _needs_escape(cp):
    return (cp < 0x20 or 0x7F <= cp <= 0xA0 or cp == 0xAD or cp == 0x034F or cp == 0x061C or
            cp == 0x1680 or cp == 0x180E or 0x2000 <= cp <= 0x200F or 0x2028 <= cp <= 0x202F or
            0x205F <= cp <= 0x206F or cp == 0x3000 or 0xFE00 <= cp <= 0xFE0F or cp == 0xFEFF or
            0xFFF0 <= cp <= 0xFFFF or 0xD800 <= cp <= 0xDFFF or 0xE000 <= cp <= 0xF8FF or
            0x1BCA0 <= cp <= 0x1BCA3 or 0x1D173 <= cp <= 0x1D17A or 0xE0000 <= cp <= 0xE0FFF or
            cp >= 0xF0000 or (cp & 0xFFFE) == 0xFFFE)


def json_string(s, escape_all):
    out = ['"']
    for ch in s:
        cp = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif escape_all and cp >= 0x7F or _needs_escape(cp):
            if cp >= 0x10000:
                v = cp - 0x10000
                out.append("\\u%04x\\u%04x" % (0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF)))
            else:
                out.append("\\u%04x" % cp)
        elif cp < 0x20:
            out.append("\\u%04x" % cp)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def corpus_text():
    lines = []
    for tag, x in build_corpus():
        escape_all = tag == "sweep"  # raw, they would be unreadable anyway
        if isinstance(x, tuple):
            lines.append('{"text": %s, "text_pair": %s, "tag": "%s"}' %
                         (json_string(x[0], escape_all), json_string(x[1], escape_all), tag))
        else:
            lines.append('{"text": %s, "tag": "%s"}' % (json_string(x, escape_all), tag))
    return "\n".join(lines) + "\n"


def read_corpus():
    with open(CORPUS, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f.read().split("\n") if line]
    for i, row in enumerate(rows):
        row["line"] = i + 1
    if len(rows) < MIN_LINES:
        sys.exit("make_corpus: %s has %d lines, fewer than %d" % (CORPUS, len(rows), MIN_LINES))
    return rows


# ---------------------------------------------------------------------------------------
# Expected outputs.

def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def configure(tok, options):
    add_special, max_length, strategy, pad = options
    tok.no_truncation()
    tok.no_padding()
    if max_length is not None:
        tok.enable_truncation(max_length, strategy=strategy)
    if pad:
        tok.enable_padding(length=max_length)
    return add_special


def encode_one(tok, row, add_special):
    args = (row["text"],) if row.get("text_pair") is None else (row["text"], row["text_pair"])
    try:
        e = tok.encode(*args, add_special_tokens=add_special)
    except Exception as ex:  # the reference raises plain Exception for truncation errors
        return {"error": str(ex)}
    return {"input_ids": e.ids, "token_type_ids": e.type_ids, "attention_mask": e.attention_mask,
            "offsets": [list(o) for o in e.offsets], "tokens": e.tokens,
            "word_ids": [-1 if w is None else w for w in e.word_ids]}


def options_json(options):
    return {"add_special_tokens": options[0], "max_length": options[1], "truncation": options[2],
            "padding": options[3]}


def encode_set(tok, rows, opt_name):
    """(corpus row, options or None, result) for every record of one option set."""
    if opt_name != EDGE_SET:
        add_special = configure(tok, OPTION_SETS[opt_name])
        return [(row, None, encode_one(tok, row, add_special)) for row in rows]
    out = []
    # Singles and pairs alike: the special tokens' count (2 or 3) is what the edges are about.
    singles = [row for row in rows if row["tag"] == "hand" and row.get("text_pair") is None]
    pairs = [row for row in rows if row["tag"] in ("hand", "hand-pair") and row.get("text_pair") is not None]
    hand = singles[:EDGE_LINES // 2] + pairs[:EDGE_LINES // 2]
    for options in EDGE_OPTIONS:
        add_special = configure(tok, options)
        out += [(row, options, encode_one(tok, row, add_special)) for row in hand]
    return out


def expected_for_vocab(name, lowercase, vocab_dir, rows, out_dir, files):
    """Writes every option set's file for one vocabulary; returns ({key: records},
    [disagreements between the two load paths])."""
    from tokenizers import BertWordPieceTokenizer, Tokenizer

    disagreements = []
    file_lines = {}
    from_json = Tokenizer.from_file(os.path.join(vocab_dir, name, "tokenizer.json"))
    from_txt = BertWordPieceTokenizer(os.path.join(vocab_dir, name, "vocab.txt"), lowercase=lowercase)
    for opt_name in list(OPTION_SETS) + [EDGE_SET]:
        a = encode_set(from_json, rows, opt_name)
        b = encode_set(from_txt, rows, opt_name)
        for (row, options, x), (_, _, y) in zip(a, b):
            if x != y:
                disagreements.append("%s %s line %d %s: tokenizer.json %s, vocab.txt %s" %
                                     (name, opt_name, row["line"], options, x, y))
        key = "%s.%s" % (name, opt_name)
        path = os.path.join(out_dir, files[key])
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            for row, options, result in a:
                rec = {"line": row["line"], "text": row["text"]}
                if row.get("text_pair") is not None:
                    rec["text_pair"] = row["text_pair"]
                if options is not None:
                    rec["options"] = options_json(options)
                rec.update(result)
                f.write(json.dumps(rec, ensure_ascii=True, separators=(",", ":")) + "\n")
        os.replace(path + ".tmp", path)
        file_lines[key] = len(a)
    return file_lines, disagreements


def write_expected(args):
    import tokenizers

    out_dir = args.out or os.environ.get("KILN_FIXTURES") or os.path.join(REPO, ".fixtures")
    vocab_dir = os.path.abspath(args.vocab_dir)
    rows = read_corpus()
    vocab_files = {}
    for name, _ in VOCABS:
        for f in ("vocab.txt", "tokenizer.json"):
            path = os.path.join(vocab_dir, name, f)
            if not os.path.isfile(path):
                sys.exit("make_corpus: %s missing (--vocab-dir or $KILN_VOCAB_DIR)" % path)
            vocab_files["%s/%s" % (name, f)] = sha256_file(path)
    stamp_src = json.dumps([sha256_file(os.path.abspath(__file__)), sha256_file(CORPUS), tokenizers.__version__,
                            sorted(vocab_files.items()), sorted(OPTION_SETS.items()), EDGE_OPTIONS,
                            EDGE_LINES])
    stamp = hashlib.sha256(stamp_src.encode()).hexdigest()[:16]
    index_path = os.path.join(out_dir, "tokenizer-golden.json")
    files = {"%s.%s" % (v, o): "tokenizer-golden.%s.%s.jsonl" % (v, o)
             for v, _ in VOCABS for o in list(OPTION_SETS) + [EDGE_SET]}
    if not args.force and os.path.isfile(index_path):
        with open(index_path, encoding="utf-8") as f:
            old = json.load(f)
        if (old.get("stamp") == stamp and old.get("vocab_dir") == vocab_dir and
                all(os.path.isfile(os.path.join(out_dir, n)) for n in files.values())):
            print("make_corpus: tokenizer golden files current (%s)" % stamp)
            return
    os.makedirs(out_dir, exist_ok=True)

    # One process per vocabulary: the reference is single-threaded per call, and the three
    # are independent.
    disagreements = []
    file_lines = {}
    with concurrent.futures.ProcessPoolExecutor(max_workers=min(len(VOCABS), os.cpu_count() or 1)) as pool:
        jobs = [pool.submit(expected_for_vocab, name, lowercase, vocab_dir, rows, out_dir, files)
                for name, lowercase in VOCABS]
        for job in jobs:
            lines, problems = job.result()
            file_lines.update(lines)
            disagreements += problems
    if disagreements:
        sys.exit("make_corpus: the two load paths of the reference disagree:\n  " +
                 "\n  ".join(disagreements[:20]))
    index = {
        "stamp": stamp,
        "tokenizers": tokenizers.__version__,
        "corpus": os.path.relpath(CORPUS, REPO),
        "corpus_sha256": sha256_file(CORPUS),
        "lines": len(rows),
        "vocab_dir": vocab_dir,
        "vocab_sha256": vocab_files,
        "vocabs": [{"name": n, "lowercase": lc} for n, lc in VOCABS],
        "option_sets": dict([(k, options_json(v)) for k, v in OPTION_SETS.items()] +
                            [(EDGE_SET, {"per_line": True})]),
        "files": files,
        "file_lines": file_lines,
    }
    with open(index_path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(index, f, indent=1)
        f.write("\n")
    os.replace(index_path + ".tmp", index_path)
    print("make_corpus: wrote %d tokenizer golden files, %d lines each (%s)" % (len(files), len(rows), stamp))


def write_fuzz_seeds(out_dir):
    """Every hand-written line, every 8th generated and every 16th sweep line, with option
    bytes that cycle through pairs, truncation, padding and UTF-8 repair."""
    os.makedirs(out_dir, exist_ok=True)
    rows = read_corpus()
    count = 0
    kept = {"hand": 1, "hand-pair": 1, "generated": 8, "sweep": 16}
    seen = {}
    for i, row in enumerate(rows):
        seen[row["tag"]] = seen.get(row["tag"], -1) + 1
        if seen[row["tag"]] % kept[row["tag"]]:
            continue
        flags = (i * 37) & 0x7E  # bit 0 (pair) is set below from the row
        data = bytearray()
        if row.get("text_pair") is not None:
            flags |= 0x01
        data.append(flags)
        if flags & 0x04:
            data.append((i * 11) & 0xFF)
        data += row["text"].encode("utf-8")
        if row.get("text_pair") is not None:
            data += b"\t" + row["text_pair"].encode("utf-8")
        with open(os.path.join(out_dir, "corpus-%04d" % (i + 1)), "wb") as f:
            f.write(bytes(data))
        count += 1
    print("make_corpus: wrote %d fuzz seeds to %s" % (count, out_dir))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("corpus")
    c.add_argument("--check", action="store_true", help="only compare corpus.jsonl with what would be written")
    z = sub.add_parser("fuzz-seeds")
    z.add_argument("out_dir")
    e = sub.add_parser("expected")
    e.add_argument("--out", help="folder (default $KILN_FIXTURES, else <repo>/.fixtures)")
    e.add_argument("--vocab-dir", default=os.environ.get("KILN_VOCAB_DIR") or DEFAULT_VOCAB_DIR)
    e.add_argument("--force", action="store_true")
    args = ap.parse_args()
    if args.cmd == "corpus":
        text = corpus_text()
        if args.check:
            with open(CORPUS, encoding="utf-8") as f:
                if f.read() != text:
                    sys.exit("make_corpus: %s differs from what make_corpus.py writes" % CORPUS)
            print("make_corpus: corpus current")
            return
        with open(CORPUS, "w", encoding="utf-8") as f:
            f.write(text)
        print("make_corpus: wrote %s (%d lines)" % (CORPUS, text.count("\n")))
    elif args.cmd == "fuzz-seeds":
        write_fuzz_seeds(args.out_dir)
    else:
        write_expected(args)


DEFAULT_VOCAB_DIR = os.path.join(HERE, "vocab")

if __name__ == "__main__":
    main()
