#include "format/ts_parser.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <set>
#include <utility>
#include <vector>

#include "format/printable.hpp"
#include "format/ts_lexer.hpp"

namespace kiln::format::ts {

namespace {

constexpr std::uint64_t kTwoPow63 = std::uint64_t{1} << 63;

// Binary operator levels between comparisons and unary operators, loosest first.
enum Level { kBitor, kBitxor, kBitand, kShift, kArith, kTerm, kUnary };

class Parser {
 public:
  Parser(std::vector<Token> tokens, SourceName source) : toks_(std::move(tokens)), src_(std::move(source)) {}

  Module module() {
    Module m;
    if (peek().kind == TokenKind::name && peek().text == "op_version_set" && is_op("=", 1)) {
      next();
      next();
      const Token& n = peek();
      if (n.kind != TokenKind::integer || n.int_value >= kTwoPow63) {
        fail(n, "expected an integer after 'op_version_set =', found " + describe(n));
      }
      m.op_version_set = static_cast<std::int64_t>(next().int_value);
      expect_newline();
    }
    // `import torch` and friends carry no information for kiln: the names they bring in
    // are the fixed environment (torch, ops, CONSTANTS, __torch__, ...).
    while (is_kw("import") || is_kw("from")) {
      while (peek().kind != TokenKind::newline && peek().kind != TokenKind::end) next();
      expect_newline();
    }
    while (peek().kind != TokenKind::end) {
      if (is_kw("class")) {
        m.classes.push_back(parse_class());
      } else if (is_kw("def")) {
        m.functions.push_back(parse_def());
      } else if (peek().kind == TokenKind::indent) {
        fail(peek(), "unexpected indent");
      } else {
        fail(peek(), "expected 'class' or 'def' at top level, found " + describe(peek()));
      }
    }
    return m;
  }

 private:
  // Counts active recursion (expression and type nesting, suites) and refuses input past a
  // limit before the stack runs out. Not decremented when it throws: the parse is over then.
  class Guard {
   public:
    Guard(Parser& p, std::uint32_t& depth, std::uint32_t limit, const Token& at, const char* what)
        : depth_(depth) {
      if (++depth_ > limit) p.fail(at, std::string(what) + " nested too deeply (limit " + std::to_string(limit) + ")");
    }
    ~Guard() { --depth_; }
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;

   private:
    std::uint32_t& depth_;
  };

  // --- tokens ------------------------------------------------------------------------

  const Token& peek(std::size_t k = 0) const { return toks_[std::min(pos_ + k, toks_.size() - 1)]; }
  // Never moves past END, so peek() is always valid.
  const Token& next() {
    const Token& t = toks_[pos_];
    if (pos_ + 1 < toks_.size()) ++pos_;
    return t;
  }
  bool is_op(std::string_view s, std::size_t k = 0) const {
    const Token& t = peek(k);
    return t.kind == TokenKind::op && t.text == s;
  }
  bool is_kw(std::string_view s, std::size_t k = 0) const {
    const Token& t = peek(k);
    return t.kind == TokenKind::keyword && t.text == s;
  }
  bool accept_op(std::string_view s) {
    if (!is_op(s)) return false;
    next();
    return true;
  }
  bool accept_kw(std::string_view s) {
    if (!is_kw(s)) return false;
    next();
    return true;
  }
  const Token& expect_op(std::string_view s) {
    if (!is_op(s)) fail(peek(), "expected '" + std::string(s) + "', found " + describe(peek()));
    return next();
  }
  void expect_kw(std::string_view s) {
    if (!is_kw(s)) fail(peek(), "expected '" + std::string(s) + "', found " + describe(peek()));
    next();
  }
  const Token& expect_name(const char* what) {
    if (peek().kind != TokenKind::name) fail(peek(), std::string("expected ") + what + ", found " + describe(peek()));
    return next();
  }
  void expect_newline() {
    if (peek().kind != TokenKind::newline) fail(peek(), "expected end of line, found " + describe(peek()));
    next();
  }

  [[noreturn]] void fail(const Token& t, const std::string& message) const { fail(t.loc, message); }
  [[noreturn]] void fail(Location loc, const std::string& message) const { throw error_at(src_, loc, message); }

  // --- classes and functions -----------------------------------------------------------

  Class parse_class() {
    Class c;
    c.loc = next().loc;
    c.name = expect_name("a class name").text;
    if (accept_op("(")) {
      const Token& base = peek();
      const std::string b = base.kind == TokenKind::name ? base.text : "";
      if (b == "Module") {
        c.base = ClassBase::module;
      } else if (b == "NamedTuple") {
        c.base = ClassBase::named_tuple;
      } else if (b == "Interface") {
        c.base = ClassBase::interface;
      } else if (b == "ModuleInterface") {
        c.base = ClassBase::module_interface;
      } else if (b == "Enum") {
        c.base = ClassBase::enum_;
      } else {
        fail(base, "class base must be Module, NamedTuple, Interface, ModuleInterface or Enum, found " +
                       describe(base));
      }
      next();
      expect_op(")");
    }
    expect_op(":");
    expect_block_start();
    Guard g(*this, block_depth_, kMaxBlockDepth, peek(), "blocks");
    while (peek().kind != TokenKind::dedent) parse_class_item(c);
    next();
    return c;
  }

  void expect_block_start() {
    expect_newline();
    if (peek().kind != TokenKind::indent) fail(peek(), "expected an indented block, found " + describe(peek()));
    next();
  }

  // `["a", "b", ]`: the printer's lists of parameter, buffer and hook names.
  std::vector<std::string> parse_name_list(const std::string& what) {
    std::vector<std::string> names;
    expect_op("[");
    while (!accept_op("]")) {
      if (peek().kind != TokenKind::string) {
        fail(peek(), what + " must be a list of strings, found " + describe(peek()));
      }
      names.push_back(next().text);
      if (!accept_op(",")) {
        expect_op("]");
        break;
      }
    }
    return names;
  }

  void parse_class_item(Class& c) {
    const Token& t = peek();
    if (is_kw("def")) {
      c.methods.push_back(parse_def());
      return;
    }
    if (accept_kw("pass")) {
      expect_newline();
      return;
    }
    if (t.kind == TokenKind::indent) fail(t, "unexpected indent");
    if (t.kind != TokenKind::name) fail(t, "expected a declaration or 'def' in a class body, found " + describe(t));
    const std::string& name = t.text;
    if (is_op("=", 1) && (name == "__parameters__" || name == "__buffers__" || name == "__forward_pre_hooks__" ||
                          name == "__forward_hooks__")) {
      next();
      next();
      std::vector<std::string> names = parse_name_list(name);
      if (name == "__parameters__") {
        c.parameters = std::move(names);
        c.has_parameters = true;
      } else if (name == "__buffers__") {
        c.buffers = std::move(names);
        c.has_buffers = true;
      } else if (name == "__forward_pre_hooks__") {
        c.forward_pre_hooks = std::move(names);
      } else {
        c.forward_hooks = std::move(names);
      }
      expect_newline();
      return;
    }
    if (name == "__annotations__" && is_op("=", 1)) {
      next();
      next();
      expect_op("[");
      expect_op("]");
      c.has_annotations = true;
      expect_newline();
      return;
    }
    ClassField f;
    f.loc = t.loc;
    if (name == "__annotations__" && is_op("[", 1)) {
      // `__annotations__["0"] = T`: an attribute whose name is not an identifier
      // (ModuleList / Sequential children).
      next();
      next();
      if (peek().kind != TokenKind::string) {
        fail(peek(), "expected a string key in __annotations__[...], found " + describe(peek()));
      }
      f.name = next().text;
      f.quoted = true;
      expect_op("]");
      expect_op("=");
      f.type = parse_type();
    } else {
      f.name = next().text;
      if (accept_op(":")) {
        f.type = parse_type();
        if (accept_op("=")) f.value = parse_expr();
      } else if (accept_op("=")) {
        f.value = parse_expr();
      } else {
        fail(peek(), "expected ':' or '=' after '" + printable(name, 60, "'") + "' in a class body, found " +
                         describe(peek()));
      }
    }
    expect_newline();
    c.fields.push_back(std::move(f));
  }

  Def parse_def() {
    Def d;
    d.loc = next().loc;
    d.name = expect_name("a function name").text;
    expect_op("(");
    bool keyword_only = false;
    std::set<std::string> seen;  // a set: a hostile list of 10^5 parameters stays fast
    if (!accept_op(")")) {
      for (;;) {
        if (is_op("*")) {
          if (keyword_only) fail(peek(), "'*' appears twice in the parameter list");
          keyword_only = true;
          next();
        } else {
          Param p;
          const Token& n = expect_name("a parameter name");
          p.loc = n.loc;
          p.name = n.text;
          if (!seen.insert(p.name).second) fail(n, "duplicate parameter '" + printable(p.name, 60, "'") + "'");
          if (accept_op(":")) p.type = parse_type();
          if (accept_op("=")) p.default_value = parse_expr();
          p.keyword_only = keyword_only;
          d.params.push_back(std::move(p));
        }
        if (accept_op(",")) {
          if (accept_op(")")) break;
          continue;
        }
        expect_op(")");
        break;
      }
    }
    if (accept_op("->")) d.returns = parse_type();
    expect_op(":");
    d.body = parse_suite();
    return d;
  }

  // --- statements ----------------------------------------------------------------------

  // The body after a ':' — an indented block, or one simple statement on the same line.
  std::vector<Stmt> parse_suite() {
    std::vector<Stmt> body;
    if (peek().kind != TokenKind::newline) {
      body.push_back(parse_simple_stmt());
      return body;
    }
    expect_block_start();
    Guard g(*this, block_depth_, kMaxBlockDepth, peek(), "blocks");
    while (peek().kind != TokenKind::dedent) body.push_back(parse_stmt());
    next();
    return body;
  }

  Stmt parse_stmt() {
    const Token& t = peek();
    if (t.kind == TokenKind::indent) fail(t, "unexpected indent");
    if (t.kind == TokenKind::keyword) {
      if (t.text == "if") return parse_if(false);
      if (t.text == "while") {
        Stmt s = make_stmt(StmtKind::while_, next().loc);
        s.test = parse_expr();
        expect_op(":");
        s.body = parse_suite();
        return s;
      }
      if (t.text == "for") {
        Stmt s = make_stmt(StmtKind::for_, next().loc);
        Expr target = parse_target_list();
        check_target(target);
        s.targets.push_back(std::move(target));
        expect_kw("in");
        s.value = parse_exprlist();
        expect_op(":");
        s.body = parse_suite();
        return s;
      }
      if (t.text == "elif" || t.text == "else") fail(t, "unexpected '" + t.text + "'");
      if (t.text == "def" || t.text == "class" || t.text == "with" || t.text == "global" || t.text == "del" ||
          t.text == "import" || t.text == "from" || t.text == "lambda") {
        fail(t, "'" + t.text + "' is not supported here");
      }
    }
    return parse_simple_stmt();
  }

  Stmt parse_if(bool is_elif) {
    Stmt s = make_stmt(StmtKind::if_, next().loc);
    s.is_elif = is_elif;
    s.test = parse_expr();
    expect_op(":");
    s.body = parse_suite();
    if (is_kw("elif")) {
      // An elif nests one level deeper in the tree, so it counts as a block.
      Guard g(*this, block_depth_, kMaxBlockDepth, peek(), "blocks");
      s.orelse.push_back(parse_if(true));
    } else if (accept_kw("else")) {
      expect_op(":");
      s.orelse = parse_suite();
    }
    return s;
  }

  static Stmt make_stmt(StmtKind kind, Location loc) {
    Stmt s;
    s.kind = kind;
    s.loc = loc;
    return s;
  }

  // Statements that fit on one line and end with it.
  Stmt parse_simple_stmt() {
    const Token& t = peek();
    Stmt s;
    s.loc = t.loc;
    if (t.kind == TokenKind::keyword) {
      if (t.text == "pass" || t.text == "break" || t.text == "continue") {
        s.kind = t.text == "pass" ? StmtKind::pass : t.text == "break" ? StmtKind::break_ : StmtKind::continue_;
        next();
        expect_newline();
        return s;
      }
      if (t.text == "return" || t.text == "raise") {
        s.kind = t.text == "return" ? StmtKind::return_ : StmtKind::raise;
        next();
        if (peek().kind != TokenKind::newline) s.value = s.kind == StmtKind::return_ ? parse_exprlist() : parse_expr();
        expect_newline();
        return s;
      }
      if (t.text == "assert") {
        s.kind = StmtKind::assert_;
        next();
        s.test = parse_expr();
        if (accept_op(",")) s.message = parse_expr();
        expect_newline();
        return s;
      }
    }
    Expr first = parse_exprlist();
    if (is_op(":")) {
      // `x : T = v` (an annotated assignment to a single target).
      if (first.kind != ExprKind::name && first.kind != ExprKind::attribute && first.kind != ExprKind::subscript) {
        fail(peek(), "only a single name can be annotated");
      }
      next();
      s.kind = StmtKind::assign;
      s.annotation = parse_type();
      expect_op("=");
      s.targets.push_back(std::move(first));
      s.value = parse_exprlist();
    } else if (is_op("=")) {
      s.kind = StmtKind::assign;
      Expr current = std::move(first);
      while (accept_op("=")) {
        check_target(current);
        s.targets.push_back(std::move(current));
        current = parse_exprlist();
      }
      s.value = std::move(current);
    } else if (const auto op = aug_op(peek())) {
      s.kind = StmtKind::aug_assign;
      s.op = *op;
      if (first.kind != ExprKind::name && first.kind != ExprKind::attribute && first.kind != ExprKind::subscript) {
        fail(first.loc, "cannot use augmented assignment on " + describe_kind(first));
      }
      next();
      s.targets.push_back(std::move(first));
      s.value = parse_exprlist();
    } else {
      s.kind = StmtKind::expr;
      s.value = std::move(first);
    }
    expect_newline();
    return s;
  }

  static std::optional<Op> aug_op(const Token& t) {
    if (t.kind != TokenKind::op || t.text.size() < 2 || t.text.back() != '=') return std::nullopt;
    const std::string_view base(t.text.data(), t.text.size() - 1);
    if (base == "=" || base == "!" || base == "<" || base == ">") return std::nullopt;  // == != <= >=
    return binary_op(base);
  }

  static std::optional<Op> binary_op(std::string_view s) {
    static constexpr std::pair<std::string_view, Op> kOps[] = {
        {"+", Op::add},        {"-", Op::sub},        {"*", Op::mul},          {"/", Op::div},
        {"//", Op::floordiv},  {"%", Op::mod},        {"**", Op::pow},         {"@", Op::matmul},
        {"<<", Op::lshift},    {">>", Op::rshift},    {"&", Op::bitand_},      {"|", Op::bitor_},
        {"^", Op::bitxor},
    };
    for (const auto& [spelling, op] : kOps) {
      if (spelling == s) return op;
    }
    return std::nullopt;
  }

  void check_target(const Expr& e) const {
    switch (e.kind) {
      case ExprKind::name:
      case ExprKind::attribute:
      case ExprKind::subscript: return;
      case ExprKind::tuple:
      case ExprKind::list:
        if (e.children.empty()) fail(e.loc, "cannot assign to " + describe_kind(e));
        for (const Expr& c : e.children) check_target(c);  // bounded by the tree's height
        return;
      default: fail(e.loc, "cannot assign to " + describe_kind(e));
    }
  }

  static std::string describe_kind(const Expr& e) {
    switch (e.kind) {
      case ExprKind::name: return "a name";
      case ExprKind::attribute: return "an attribute";
      case ExprKind::call: return "a function call";
      case ExprKind::subscript: return "a subscript";
      case ExprKind::slice:
      case ExprKind::omitted: return "a slice";
      case ExprKind::integer:
      case ExprKind::floating:
      case ExprKind::string:
      case ExprKind::true_:
      case ExprKind::false_:
      case ExprKind::none: return "a literal";
      case ExprKind::list: return e.children.empty() ? "an empty list" : "a list";
      case ExprKind::tuple: return e.children.empty() ? "an empty tuple" : "a tuple";
      case ExprKind::dict: return "a dict";
      case ExprKind::unary:
      case ExprKind::binary: return "an operator";
      case ExprKind::ternary: return "a conditional expression";
      case ExprKind::type: return "a type";
    }
    return "an expression";
  }

  // --- expressions ---------------------------------------------------------------------

  // Builds a node and checks the tree's height, which bounds every later recursive walk
  // (and the destructors): loops such as `a + b + c ...` or `x[0][0]...` deepen the tree
  // without deepening the parser's recursion.
  Expr make(ExprKind kind, Location loc, std::vector<Expr> children) const {
    Expr e;
    e.kind = kind;
    e.loc = loc;
    std::uint32_t h = 0;
    for (const Expr& c : children) h = std::max(h, c.height);
    e.height = h + 1;
    if (e.height > kMaxExprDepth) {
      fail(loc, "expression nested too deeply (limit " + std::to_string(kMaxExprDepth) + ")");
    }
    e.children = std::move(children);
    return e;
  }
  Expr make_binary(Op op, Expr lhs, Expr rhs) const {
    const Location loc = lhs.loc;
    std::vector<Expr> c;
    c.reserve(2);
    c.push_back(std::move(lhs));
    c.push_back(std::move(rhs));
    Expr e = make(ExprKind::binary, loc, std::move(c));
    e.op = op;
    return e;
  }
  Expr make_unary(Op op, Location loc, Expr operand) const {
    std::vector<Expr> c;
    c.push_back(std::move(operand));
    Expr e = make(ExprKind::unary, loc, std::move(c));
    e.op = op;
    return e;
  }

  bool starts_expr(const Token& t) const {
    switch (t.kind) {
      case TokenKind::name:
      case TokenKind::integer:
      case TokenKind::floating:
      case TokenKind::string: return true;
      case TokenKind::keyword: return t.text == "not" || t.text == "True" || t.text == "False" || t.text == "None";
      case TokenKind::op:
        return t.text == "(" || t.text == "[" || t.text == "{" || t.text == "-" || t.text == "+" || t.text == "~";
      default: return false;
    }
  }

  // `a` or `a, b` / `a, b,` (a tuple without parentheses): statement-level expressions.
  Expr parse_exprlist() {
    const Location loc = peek().loc;
    Expr first = parse_expr();
    if (!is_op(",")) return first;
    std::vector<Expr> items;
    items.push_back(std::move(first));
    while (accept_op(",")) {
      if (!starts_expr(peek())) break;
      items.push_back(parse_expr());
    }
    return make(ExprKind::tuple, loc, std::move(items));
  }

  // A `for` target: like parse_exprlist, but its items stop before comparisons so that
  // the `in` stays for the loop.
  Expr parse_target_list() {
    const Location loc = peek().loc;
    Expr first = parse_binary(kBitor);
    if (!is_op(",")) return first;
    std::vector<Expr> items;
    items.push_back(std::move(first));
    while (accept_op(",")) {
      if (!starts_expr(peek())) break;
      items.push_back(parse_binary(kBitor));
    }
    return make(ExprKind::tuple, loc, std::move(items));
  }

  Expr parse_expr() {
    Guard g(*this, expr_depth_, kMaxExprDepth, peek(), "expression");
    Expr e = parse_or();
    if (!is_kw("if")) return e;
    next();
    Expr test = parse_or();
    expect_kw("else");
    Expr otherwise = parse_expr();
    const Location loc = e.loc;
    std::vector<Expr> c;
    c.reserve(3);
    c.push_back(std::move(test));
    c.push_back(std::move(e));
    c.push_back(std::move(otherwise));
    return make(ExprKind::ternary, loc, std::move(c));
  }

  Expr parse_or() {
    Expr e = parse_and();
    while (accept_kw("or")) e = make_binary(Op::or_, std::move(e), parse_and());
    return e;
  }

  Expr parse_and() {
    Expr e = parse_not();
    while (accept_kw("and")) e = make_binary(Op::and_, std::move(e), parse_not());
    return e;
  }

  Expr parse_not() {
    if (!is_kw("not")) return parse_comparison();
    const Token& t = next();
    Guard g(*this, expr_depth_, kMaxExprDepth, t, "expression");
    return make_unary(Op::not_, t.loc, parse_not());
  }

  std::optional<Op> comparison_op() const {
    const Token& t = peek();
    if (t.kind == TokenKind::op) {
      if (t.text == "==") return Op::eq;
      if (t.text == "!=") return Op::ne;
      if (t.text == "<") return Op::lt;
      if (t.text == "<=") return Op::le;
      if (t.text == ">") return Op::gt;
      if (t.text == ">=") return Op::ge;
    } else if (t.kind == TokenKind::keyword) {
      if (t.text == "in") return Op::in;
      if (t.text == "not" && is_kw("in", 1)) return Op::not_in;
      if (t.text == "is") return is_kw("not", 1) ? Op::is_not : Op::is;
    }
    return std::nullopt;
  }

  Expr parse_comparison() {
    Expr e = parse_binary(kBitor);
    while (const auto op = comparison_op()) {
      next();
      if (*op == Op::not_in || *op == Op::is_not) next();
      e = make_binary(*op, std::move(e), parse_binary(kBitor));
    }
    return e;
  }

  std::optional<Op> level_op(int level) const {
    const Token& t = peek();
    if (t.kind != TokenKind::op) return std::nullopt;
    const std::string& s = t.text;
    switch (level) {
      case kBitor: return s == "|" ? std::optional(Op::bitor_) : std::nullopt;
      case kBitxor: return s == "^" ? std::optional(Op::bitxor) : std::nullopt;
      case kBitand: return s == "&" ? std::optional(Op::bitand_) : std::nullopt;
      case kShift: return s == "<<" || s == ">>" ? binary_op(s) : std::nullopt;
      case kArith: return s == "+" || s == "-" ? binary_op(s) : std::nullopt;
      case kTerm: return s == "*" || s == "/" || s == "//" || s == "%" || s == "@" ? binary_op(s) : std::nullopt;
      default: return std::nullopt;
    }
  }

  // Left-associative binary levels; recursion here is bounded by the number of levels.
  Expr parse_binary(int level) {
    if (level == kUnary) return parse_unary();
    Expr e = parse_binary(level + 1);
    while (const auto op = level_op(level)) {
      next();
      e = make_binary(*op, std::move(e), parse_binary(level + 1));
    }
    return e;
  }

  Expr parse_unary() {
    const Token& t = peek();
    if (t.kind != TokenKind::op || (t.text != "-" && t.text != "+" && t.text != "~")) return parse_power();
    next();
    Guard g(*this, expr_depth_, kMaxExprDepth, t, "expression");
    // -9223372036854775808 is INT64_MIN: the literal 2^63 exists only here, folded into
    // the constant (the printer may write it; 2^63 alone does not fit an int).
    if (t.text == "-" && peek().kind == TokenKind::integer && peek().int_value == kTwoPow63 && !is_op("**", 1) &&
        !is_op("(", 1) && !is_op("[", 1) && !is_op(".", 1)) {
      next();
      Expr e = make(ExprKind::integer, t.loc, {});
      e.int_value = std::numeric_limits<std::int64_t>::min();
      e.text = "-9223372036854775808";
      return e;
    }
    const Op op = t.text == "-" ? Op::neg : t.text == "+" ? Op::pos : Op::invert;
    return make_unary(op, t.loc, parse_unary());
  }

  Expr parse_power() {
    Expr e = parse_postfix();
    if (!is_op("**")) return e;
    const Token& t = next();
    // `a ** b ** c` recurses on the right; count it like any nesting.
    Guard g(*this, expr_depth_, kMaxExprDepth, t, "expression");
    return make_binary(Op::pow, std::move(e), parse_unary());
  }

  Expr parse_postfix() {
    Expr e = parse_atom();
    for (;;) {
      if (is_op("(")) {
        e = parse_call(std::move(e));
      } else if (is_op(".")) {
        next();
        const Token& n = expect_name("an attribute name");
        const Location loc = e.loc;
        std::vector<Expr> c;
        c.push_back(std::move(e));
        e = make(ExprKind::attribute, loc, std::move(c));
        e.text = n.text;
      } else if (is_op("[")) {
        next();
        const Location loc = e.loc;
        std::vector<Expr> c;
        c.push_back(std::move(e));
        for (;;) {
          c.push_back(parse_subscript_item());
          if (accept_op(",")) {
            if (is_op("]")) break;
            continue;
          }
          break;
        }
        expect_op("]");
        e = make(ExprKind::subscript, loc, std::move(c));
      } else {
        return e;
      }
    }
  }

  Expr parse_call(Expr callee) {
    next();  // (
    const Location loc = callee.loc;
    // These builtins take a type first; parse it as one so the importer gets a TypeExpr.
    const bool type_first = callee.kind == ExprKind::name && (callee.text == "annotate" ||
                                                              callee.text == "unchecked_cast" ||
                                                              callee.text == "uninitialized");
    std::vector<Expr> args;
    std::vector<std::string> keywords;
    std::set<std::string> seen;
    args.push_back(std::move(callee));
    if (!accept_op(")")) {
      for (;;) {
        if (peek().kind == TokenKind::name && is_op("=", 1)) {
          const Token& k = next();
          if (!seen.insert(k.text).second) fail(k, "keyword argument '" + printable(k.text, 60, "'") + "' repeated");
          keywords.push_back(k.text);
          next();
          args.push_back(parse_expr());
        } else {
          if (!keywords.empty()) fail(peek(), "positional argument follows keyword argument");
          if (type_first && args.size() == 1) {
            Expr t;
            t.kind = ExprKind::type;
            t.loc = peek().loc;
            t.type = parse_type();
            args.push_back(std::move(t));
          } else {
            args.push_back(parse_expr());
          }
        }
        if (accept_op(",")) {
          if (accept_op(")")) break;
          continue;
        }
        expect_op(")");
        break;
      }
    }
    Expr e = make(ExprKind::call, loc, std::move(args));
    e.keywords = std::move(keywords);
    return e;
  }

  Expr omitted() const {
    Expr e;
    e.kind = ExprKind::omitted;
    e.loc = peek().loc;
    return e;
  }

  // One index of a subscript: an expression or a slice `a:b`, `a:b:c`, `:`, `::2`, ...
  Expr parse_subscript_item() {
    const Location loc = peek().loc;
    Expr start = is_op(":") ? omitted() : parse_expr();
    if (!is_op(":")) return start;
    next();
    auto bound = [&] { return is_op(":") || is_op(",") || is_op("]") ? omitted() : parse_expr(); };
    std::vector<Expr> c;
    c.reserve(3);
    c.push_back(std::move(start));
    c.push_back(bound());
    if (accept_op(":")) {
      c.push_back(is_op(",") || is_op("]") ? omitted() : parse_expr());
    } else {
      c.push_back(omitted());
    }
    return make(ExprKind::slice, loc, std::move(c));
  }

  // Comma-separated expressions up to `close` (trailing comma allowed); `trailing_comma`
  // says whether there was one after the last item.
  std::vector<Expr> parse_items(std::string_view close, bool& trailing_comma) {
    std::vector<Expr> items;
    trailing_comma = false;
    while (!accept_op(close)) {
      items.push_back(parse_expr());
      if (accept_op(",")) {
        trailing_comma = true;
        continue;
      }
      trailing_comma = false;
      expect_op(close);
      break;
    }
    return items;
  }

  Expr parse_atom() {
    const Token& t = peek();
    switch (t.kind) {
      case TokenKind::name: {
        next();
        Expr e = make(ExprKind::name, t.loc, {});
        e.text = t.text;
        return e;
      }
      case TokenKind::integer: {
        if (t.int_value >= kTwoPow63) fail(t, "integer literal out of range: " + t.text);
        next();
        Expr e = make(ExprKind::integer, t.loc, {});
        e.int_value = static_cast<std::int64_t>(t.int_value);
        e.text = t.text;
        return e;
      }
      case TokenKind::floating: {
        next();
        Expr e = make(ExprKind::floating, t.loc, {});
        e.float_value = t.float_value;
        e.text = t.text;
        return e;
      }
      case TokenKind::string: {
        // Adjacent literals join, as in Python.
        Expr e = make(ExprKind::string, t.loc, {});
        while (peek().kind == TokenKind::string) e.text += next().text;
        return e;
      }
      case TokenKind::keyword:
        if (t.text == "True" || t.text == "False" || t.text == "None") {
          next();
          return make(t.text == "True" ? ExprKind::true_ : t.text == "False" ? ExprKind::false_ : ExprKind::none,
                      t.loc, {});
        }
        break;
      case TokenKind::op:
        if (t.text == "(") {
          next();
          if (accept_op(")")) return make(ExprKind::tuple, t.loc, {});
          Expr first = parse_expr();
          if (accept_op(")")) {
            first.loc = t.loc;  // a node's location is its first token, here the '('
            return first;
          }
          if (!is_op(",")) fail(peek(), "expected ',' or ')', found " + describe(peek()));
          next();
          bool trailing = false;
          std::vector<Expr> items = parse_items(")", trailing);
          items.insert(items.begin(), std::move(first));
          return make(ExprKind::tuple, t.loc, std::move(items));
        }
        if (t.text == "[") {
          next();
          bool trailing = false;
          return make(ExprKind::list, t.loc, parse_items("]", trailing));
        }
        if (t.text == "{") {
          next();
          std::vector<Expr> items;
          while (!accept_op("}")) {
            items.push_back(parse_expr());
            expect_op(":");
            items.push_back(parse_expr());
            if (!accept_op(",")) {
              expect_op("}");
              break;
            }
          }
          return make(ExprKind::dict, t.loc, std::move(items));
        }
        break;
      default: break;
    }
    fail(t, "expected an expression, found " + describe(t));
  }

  // --- types ---------------------------------------------------------------------------

  TypeExpr parse_type() {
    Guard g(*this, expr_depth_, kMaxExprDepth, peek(), "type");
    TypeExpr t;
    t.loc = peek().loc;
    if (accept_kw("None")) {
      t.name = "None";
    } else {
      t.name = expect_name("a type").text;
      while (is_op(".") && peek(1).kind == TokenKind::name) {
        next();
        t.name += '.';
        t.name += next().text;
      }
    }
    if (!accept_op("[")) return t;
    t.subscripted = true;
    if (is_op("(") && is_op(")", 1)) {  // Tuple[()], the empty tuple type
      next();
      next();
    } else {
      for (;;) {
        t.args.push_back(parse_type());
        if (accept_op(",")) {
          if (is_op("]")) break;
          continue;
        }
        break;
      }
    }
    expect_op("]");
    return t;
  }

  std::vector<Token> toks_;
  SourceName src_;
  std::size_t pos_ = 0;
  std::uint32_t expr_depth_ = 0;
  std::uint32_t block_depth_ = 0;
};

// --- printer -----------------------------------------------------------------------------

// Printing precedence, loosest first; atoms and postfix expressions bind tightest.
enum Prec {
  kPTernary = 1, kPOr, kPAnd, kPNot, kPCompare, kPBitor, kPBitxor, kPBitand, kPShift, kPArith, kPTerm,
  kPUnary, kPPower, kPAtom
};

const char* spelling(Op op) {
  switch (op) {
    case Op::add: return "+";
    case Op::sub: return "-";
    case Op::mul: return "*";
    case Op::div: return "/";
    case Op::floordiv: return "//";
    case Op::mod: return "%";
    case Op::pow: return "**";
    case Op::matmul: return "@";
    case Op::lshift: return "<<";
    case Op::rshift: return ">>";
    case Op::bitand_: return "&";
    case Op::bitor_: return "|";
    case Op::bitxor: return "^";
    case Op::eq: return "==";
    case Op::ne: return "!=";
    case Op::lt: return "<";
    case Op::le: return "<=";
    case Op::gt: return ">";
    case Op::ge: return ">=";
    case Op::is: return "is";
    case Op::is_not: return "is not";
    case Op::in: return "in";
    case Op::not_in: return "not in";
    case Op::and_: return "and";
    case Op::or_: return "or";
    case Op::neg: return "-";
    case Op::pos: return "+";
    case Op::not_: return "not";
    case Op::invert: return "~";
  }
  return "?";
}

int binary_prec(Op op) {
  switch (op) {
    case Op::or_: return kPOr;
    case Op::and_: return kPAnd;
    case Op::bitor_: return kPBitor;
    case Op::bitxor: return kPBitxor;
    case Op::bitand_: return kPBitand;
    case Op::lshift:
    case Op::rshift: return kPShift;
    case Op::add:
    case Op::sub: return kPArith;
    case Op::mul:
    case Op::div:
    case Op::floordiv:
    case Op::mod:
    case Op::matmul: return kPTerm;
    case Op::pow: return kPPower;
    default: return kPCompare;
  }
}

int prec(const Expr& e) {
  switch (e.kind) {
    case ExprKind::ternary: return kPTernary;
    case ExprKind::binary: return binary_prec(e.op);
    case ExprKind::unary: return e.op == Op::not_ ? kPNot : kPUnary;
    case ExprKind::integer: return e.int_value < 0 ? kPUnary : kPAtom;  // folded INT64_MIN
    default: return kPAtom;
  }
}

void quote(std::string& out, const std::string& s) {
  out += '"';
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\\' || c == '"') {
      out += '\\';
      out += ch;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c >= 0x20 && c < 0x7f) {
      out += ch;
    } else {
      out += '\\';
      out += static_cast<char>('0' + (c >> 6));
      out += static_cast<char>('0' + ((c >> 3) & 7));
      out += static_cast<char>('0' + (c & 7));
    }
  }
  out += '"';
}

void print_type(std::string& out, const TypeExpr& t) {
  out += t.name;
  if (!t.subscripted) return;
  out += '[';
  if (t.args.empty()) out += "()";
  for (std::size_t i = 0; i < t.args.size(); ++i) {
    if (i) out += ", ";
    print_type(out, t.args[i]);
  }
  out += ']';
}

void print_expr(std::string& out, const Expr& e, int min_prec);

void print_list(std::string& out, const std::vector<Expr>& items, std::size_t from) {
  for (std::size_t i = from; i < items.size(); ++i) {
    if (i > from) out += ", ";
    print_expr(out, items[i], kPTernary);
  }
}

void print_bare(std::string& out, const Expr& e) {
  switch (e.kind) {
    case ExprKind::name:
    case ExprKind::integer:
    case ExprKind::floating: out += e.text; return;
    case ExprKind::string: quote(out, e.text); return;
    case ExprKind::true_: out += "True"; return;
    case ExprKind::false_: out += "False"; return;
    case ExprKind::none: out += "None"; return;
    case ExprKind::omitted: return;
    case ExprKind::type: print_type(out, *e.type); return;
    case ExprKind::attribute: {
      const Expr& obj = e.children[0];
      // `1.x` would lex as a malformed number.
      const bool number = obj.kind == ExprKind::integer || obj.kind == ExprKind::floating;
      if (number) out += '(';
      print_expr(out, obj, kPAtom);
      if (number) out += ')';
      out += '.';
      out += e.text;
      return;
    }
    case ExprKind::call: {
      print_expr(out, e.children[0], kPAtom);
      out += '(';
      const std::size_t positional = e.children.size() - e.keywords.size();
      for (std::size_t i = 1; i < e.children.size(); ++i) {
        if (i > 1) out += ", ";
        if (i >= positional) out += e.keywords[i - positional] + "=";
        print_expr(out, e.children[i], kPTernary);
      }
      out += ')';
      return;
    }
    case ExprKind::subscript:
      print_expr(out, e.children[0], kPAtom);
      out += '[';
      print_list(out, e.children, 1);
      out += ']';
      return;
    case ExprKind::slice:
      print_expr(out, e.children[0], kPTernary);
      out += ':';
      print_expr(out, e.children[1], kPTernary);
      if (e.children[2].kind != ExprKind::omitted) {
        out += ':';
        print_expr(out, e.children[2], kPTernary);
      }
      return;
    case ExprKind::list:
      out += '[';
      print_list(out, e.children, 0);
      out += ']';
      return;
    case ExprKind::tuple:
      out += '(';
      print_list(out, e.children, 0);
      if (e.children.size() == 1) out += ',';
      out += ')';
      return;
    case ExprKind::dict:
      out += '{';
      for (std::size_t i = 0; i + 1 < e.children.size(); i += 2) {
        if (i) out += ", ";
        print_expr(out, e.children[i], kPTernary);
        out += ": ";
        print_expr(out, e.children[i + 1], kPTernary);
      }
      out += '}';
      return;
    case ExprKind::unary:
      out += spelling(e.op);
      if (e.op == Op::not_) {
        out += ' ';
        print_expr(out, e.children[0], kPNot);
      } else {
        print_expr(out, e.children[0], kPUnary);
      }
      return;
    case ExprKind::binary: {
      const int p = binary_prec(e.op);
      if (e.op == Op::pow) {  // right-associative; its left operand is a postfix expression
        print_expr(out, e.children[0], kPAtom);
        out += " ** ";
        print_expr(out, e.children[1], kPUnary);
      } else {
        // Left-associative; comparisons too (`a < b < c` is (a < b) < c, as the parser
        // builds it, not Python's chain).
        print_expr(out, e.children[0], p);
        out += ' ';
        out += spelling(e.op);
        out += ' ';
        print_expr(out, e.children[1], p + 1);
      }
      return;
    }
    case ExprKind::ternary:
      print_expr(out, e.children[1], kPTernary + 1);
      out += " if ";
      print_expr(out, e.children[0], kPTernary + 1);
      out += " else ";
      print_expr(out, e.children[2], kPTernary);
      return;
  }
}

void print_expr(std::string& out, const Expr& e, int min_prec) {
  const bool paren = prec(e) < min_prec;
  if (paren) out += '(';
  print_bare(out, e);
  if (paren) out += ')';
}

// Statement level: a non-empty tuple prints without parentheses (`a, b, = t`, `return a, b`).
void print_exprlist(std::string& out, const Expr& e) {
  if (e.kind != ExprKind::tuple || e.children.empty()) {
    print_expr(out, e, kPTernary);
    return;
  }
  print_list(out, e.children, 0);
  if (e.children.size() == 1) out += ',';
}

void indent(std::string& out, int level) { out.append(static_cast<std::size_t>(level) * 2, ' '); }

void print_block(std::string& out, const std::vector<Stmt>& body, int level);

void print_stmt(std::string& out, const Stmt& s, int level) {
  indent(out, level);
  switch (s.kind) {
    case StmtKind::assign:
      for (const Expr& t : s.targets) {
        print_exprlist(out, t);
        if (s.annotation) {
          out += " : ";
          print_type(out, *s.annotation);
        }
        out += " = ";
      }
      print_exprlist(out, *s.value);
      break;
    case StmtKind::aug_assign:
      print_expr(out, s.targets[0], kPTernary);
      out += ' ';
      out += spelling(s.op);
      out += "= ";
      print_exprlist(out, *s.value);
      break;
    case StmtKind::expr: print_exprlist(out, *s.value); break;
    case StmtKind::return_:
    case StmtKind::raise:
      out += s.kind == StmtKind::return_ ? "return" : "raise";
      if (s.value) {
        out += ' ';
        print_exprlist(out, *s.value);
      }
      break;
    case StmtKind::assert_:
      out += "assert ";
      print_expr(out, *s.test, kPTernary);
      if (s.message) {
        out += ", ";
        print_expr(out, *s.message, kPTernary);
      }
      break;
    case StmtKind::if_: {
      const Stmt* cur = &s;
      for (;;) {
        out += cur->is_elif ? "elif " : "if ";
        print_expr(out, *cur->test, kPTernary);
        out += ":\n";
        print_block(out, cur->body, level + 1);
        if (cur->orelse.size() == 1 && cur->orelse[0].is_elif) {
          cur = &cur->orelse[0];
          indent(out, level);
          continue;
        }
        if (!cur->orelse.empty()) {
          indent(out, level);
          out += "else:\n";
          print_block(out, cur->orelse, level + 1);
        }
        return;
      }
    }
    case StmtKind::for_:
      out += "for ";
      print_exprlist(out, s.targets[0]);
      out += " in ";
      print_exprlist(out, *s.value);
      out += ":\n";
      print_block(out, s.body, level + 1);
      return;
    case StmtKind::while_:
      out += "while ";
      print_expr(out, *s.test, kPTernary);
      out += ":\n";
      print_block(out, s.body, level + 1);
      return;
    case StmtKind::pass: out += "pass"; break;
    case StmtKind::break_: out += "break"; break;
    case StmtKind::continue_: out += "continue"; break;
  }
  out += '\n';
}

void print_block(std::string& out, const std::vector<Stmt>& body, int level) {
  if (body.empty()) {
    indent(out, level);
    out += "pass\n";
  }
  for (const Stmt& s : body) print_stmt(out, s, level);
}

void print_def(std::string& out, const Def& d, int level) {
  indent(out, level);
  out += "def " + d.name + "(";
  bool star = false;
  for (std::size_t i = 0; i < d.params.size(); ++i) {
    const Param& p = d.params[i];
    if (i) out += ", ";
    if (p.keyword_only && !star) {
      out += "*, ";
      star = true;
    }
    out += p.name;
    if (p.type) {
      out += ": ";
      print_type(out, *p.type);
    }
    if (p.default_value) {
      out += '=';
      print_expr(out, *p.default_value, kPTernary);
    }
  }
  out += ')';
  if (d.returns) {
    out += " -> ";
    print_type(out, *d.returns);
  }
  out += ":\n";
  print_block(out, d.body, level + 1);
}

void print_names(std::string& out, const char* what, const std::vector<std::string>& names) {
  indent(out, 1);
  out += what;
  out += " = [";
  for (const std::string& n : names) {
    quote(out, n);
    out += ", ";
  }
  out += "]\n";
}

void print_class(std::string& out, const Class& c) {
  static constexpr const char* kBases[] = {"", "Module", "NamedTuple", "Interface", "ModuleInterface", "Enum"};
  out += "class " + c.name;
  if (c.base != ClassBase::none) out += std::string("(") + kBases[static_cast<int>(c.base)] + ")";
  out += ":\n";
  const std::size_t start = out.size();
  if (c.has_parameters) print_names(out, "__parameters__", c.parameters);
  if (c.has_buffers) print_names(out, "__buffers__", c.buffers);
  if (!c.forward_pre_hooks.empty()) print_names(out, "__forward_pre_hooks__", c.forward_pre_hooks);
  if (!c.forward_hooks.empty()) print_names(out, "__forward_hooks__", c.forward_hooks);
  if (c.has_annotations) out += "  __annotations__ = []\n";
  for (const ClassField& f : c.fields) {
    indent(out, 1);
    if (f.quoted) {
      out += "__annotations__[";
      quote(out, f.name);
      out += "] = ";
      print_type(out, *f.type);
    } else {
      out += f.name;
      if (f.type) {
        out += " : ";
        print_type(out, *f.type);
      }
      if (f.value) {
        out += " = ";
        print_expr(out, *f.value, kPTernary);
      }
    }
    out += '\n';
  }
  for (const Def& d : c.methods) print_def(out, d, 1);
  if (out.size() == start) out += "  pass\n";
}

}  // namespace

Module parse_module_source(std::string_view text, const std::string& file, const std::string& record) {
  SourceName source{file, record};
  std::vector<Token> tokens = tokenize(text, source);
  return Parser(std::move(tokens), std::move(source)).module();
}

std::string to_source(const Module& m) {
  std::string out;
  if (m.op_version_set) out += "op_version_set = " + std::to_string(*m.op_version_set) + "\n";
  for (const Class& c : m.classes) print_class(out, c);
  for (const Def& d : m.functions) print_def(out, d, 0);
  return out;
}

std::string to_source(const Expr& e) {
  std::string out;
  print_expr(out, e, kPTernary);
  return out;
}

std::string to_source(const TypeExpr& t) {
  std::string out;
  print_type(out, t);
  return out;
}

}  // namespace kiln::format::ts
