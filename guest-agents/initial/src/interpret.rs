//! An interpreter for the priority language, so the meta agent can try a program on training
//! instances before it writes it (`screen.rs`), without compiling it.
//!
//! It understands what the operators write (float literals, the function's parameters, named
//! constants it is given, `+ - * /`, negation, parentheses, single-expression blocks, `if` on
//! comparisons, and the helpers `div`, `sqrt`, `log`, `exp`, `f64::min`, `f64::max`, `f64::abs`,
//! `f64::powi`) and computes them as the compiled task agent does. Anything else is refused, and
//! the caller then treats the program as unscreened.

use crate::priority as helpers;
use syn::{BinOp, Expr, Lit, Stmt, UnOp};

/// A compiled priority expression.
#[derive(Debug, Clone)]
pub enum Node {
    Const(f64),
    Var(usize),
    Add(Box<Node>, Box<Node>),
    Sub(Box<Node>, Box<Node>),
    Mul(Box<Node>, Box<Node>),
    Div(Box<Node>, Box<Node>),
    Neg(Box<Node>),
    Unary(fn(f64) -> f64, Box<Node>),
    Binary(fn(f64, f64) -> f64, Box<Node>, Box<Node>),
    Powi(Box<Node>, i32),
    If(Box<Cond>, Box<Node>, Box<Node>),
}

/// A compiled condition.
#[derive(Debug, Clone)]
pub enum Cond {
    Compare(fn(f64, f64) -> bool, Node, Node),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
    Not(Box<Cond>),
}

/// Names the compiler knows: the parameters (in call order) and named constants.
pub struct Scope<'a> {
    pub parameters: &'a [String],
    pub constants: &'a [(String, f64)],
}

/// Compiles a body; `None` when it holds anything the interpreter does not know. Subexpressions
/// of constants alone are computed here once (with the same operations, so to the same value).
pub fn compile(e: &Expr, scope: &Scope) -> Option<Node> {
    build(e, scope).map(Node::folded)
}

fn build(e: &Expr, scope: &Scope) -> Option<Node> {
    Some(match e {
        Expr::Lit(l) => match &l.lit {
            Lit::Float(f) => Node::Const(f.base10_parse().ok()?),
            _ => return None,
        },
        Expr::Path(p) => {
            let name = p.path.get_ident()?.to_string();
            if let Some(index) = scope.parameters.iter().position(|n| *n == name) {
                Node::Var(index)
            } else {
                Node::Const(scope.constants.iter().find(|(n, _)| *n == name)?.1)
            }
        }
        Expr::Paren(p) => compile(&p.expr, scope)?,
        Expr::Group(g) => compile(&g.expr, scope)?,
        Expr::Unary(u) if matches!(u.op, UnOp::Neg(_)) => Node::Neg(Box::new(compile(&u.expr, scope)?)),
        Expr::Binary(b) => {
            let (l, r) = (Box::new(compile(&b.left, scope)?), Box::new(compile(&b.right, scope)?));
            match b.op {
                BinOp::Add(_) => Node::Add(l, r),
                BinOp::Sub(_) => Node::Sub(l, r),
                BinOp::Mul(_) => Node::Mul(l, r),
                BinOp::Div(_) => Node::Div(l, r),
                _ => return None,
            }
        }
        Expr::Block(b) => match b.block.stmts.as_slice() {
            [Stmt::Expr(tail, None)] => compile(tail, scope)?,
            _ => return None,
        },
        Expr::If(i) => {
            let then = match i.then_branch.stmts.as_slice() {
                [Stmt::Expr(tail, None)] => compile(tail, scope)?,
                _ => return None,
            };
            let (_, other) = i.else_branch.as_ref()?;
            Node::If(Box::new(condition(&i.cond, scope)?), Box::new(then), Box::new(compile(other, scope)?))
        }
        Expr::Call(c) => call(c, scope)?,
        _ => return None,
    })
}

fn call(c: &syn::ExprCall, scope: &Scope) -> Option<Node> {
    let Expr::Path(f) = &*c.func else { return None };
    let name: Vec<String> = f.path.segments.iter().map(|s| s.ident.to_string()).collect();
    let args: Vec<&Expr> = c.args.iter().collect();
    let arg = |k: usize| compile(args[k], scope).map(Box::new);
    Some(match (name.join("::").as_str(), args.len()) {
        ("div", 2) => Node::Binary(helpers::div, arg(0)?, arg(1)?),
        ("f64::min", 2) => Node::Binary(f64::min, arg(0)?, arg(1)?),
        ("f64::max", 2) => Node::Binary(f64::max, arg(0)?, arg(1)?),
        ("sqrt", 1) => Node::Unary(helpers::sqrt, arg(0)?),
        ("log", 1) => Node::Unary(helpers::log, arg(0)?),
        ("exp", 1) => Node::Unary(helpers::exp, arg(0)?),
        ("f64::abs", 1) => Node::Unary(f64::abs, arg(0)?),
        ("f64::powi", 2) => {
            let Expr::Lit(syn::ExprLit { lit: Lit::Int(n), .. }) = args[1] else { return None };
            Node::Powi(arg(0)?, n.base10_parse().ok()?)
        }
        _ => return None,
    })
}

fn condition(e: &Expr, scope: &Scope) -> Option<Cond> {
    match e {
        Expr::Paren(p) => condition(&p.expr, scope),
        Expr::Unary(u) if matches!(u.op, UnOp::Not(_)) => Some(Cond::Not(Box::new(condition(&u.expr, scope)?))),
        Expr::Binary(b) => {
            let compare: fn(f64, f64) -> bool = match b.op {
                BinOp::Lt(_) => |a, b| a < b,
                BinOp::Le(_) => |a, b| a <= b,
                BinOp::Gt(_) => |a, b| a > b,
                BinOp::Ge(_) => |a, b| a >= b,
                BinOp::Eq(_) => |a, b| a == b,
                BinOp::Ne(_) => |a, b| a != b,
                BinOp::And(_) => {
                    return Some(Cond::And(
                        Box::new(condition(&b.left, scope)?),
                        Box::new(condition(&b.right, scope)?),
                    ));
                }
                BinOp::Or(_) => {
                    return Some(Cond::Or(Box::new(condition(&b.left, scope)?), Box::new(condition(&b.right, scope)?)));
                }
                _ => return None,
            };
            Some(Cond::Compare(compare, compile(&b.left, scope)?, compile(&b.right, scope)?))
        }
        _ => None,
    }
}

impl Node {
    /// This node with constant operands computed: a node whose operands are all constants
    /// becomes one, and so does an `if` whose condition is constant or whose branches are the
    /// same constant (a condition has no effects).
    fn folded(self) -> Node {
        let constant = |n: &Node| matches!(n, Node::Const(_));
        let fold = match &self {
            Node::Const(_) | Node::Var(_) => false,
            Node::Neg(a) | Node::Unary(_, a) | Node::Powi(a, _) => constant(a),
            Node::Add(a, b) | Node::Sub(a, b) | Node::Mul(a, b) | Node::Div(a, b) | Node::Binary(_, a, b) => {
                constant(a) && constant(b)
            }
            Node::If(c, a, b) => match (&**a, &**b) {
                (Node::Const(x), Node::Const(y)) if x.to_bits() == y.to_bits() => true,
                _ => c.constant() && constant(a) && constant(b),
            },
        };
        match self {
            Node::If(c, a, b) if !fold && c.constant() => {
                if c.holds(&[]) {
                    *a
                } else {
                    *b
                }
            }
            node if fold => Node::Const(node.eval(&[])),
            node => node,
        }
    }

    /// Nodes in the compiled tree (conditions included), what one evaluation costs.
    pub fn size(&self) -> usize {
        match self {
            Node::Const(_) | Node::Var(_) => 1,
            Node::Neg(a) | Node::Unary(_, a) | Node::Powi(a, _) => 1 + a.size(),
            Node::Add(a, b) | Node::Sub(a, b) | Node::Mul(a, b) | Node::Div(a, b) | Node::Binary(_, a, b) => {
                1 + a.size() + b.size()
            }
            Node::If(c, a, b) => 1 + c.size() + a.size() + b.size(),
        }
    }

    /// The value for the given parameter values.
    pub fn eval(&self, vars: &[f64]) -> f64 {
        match self {
            Node::Const(c) => *c,
            Node::Var(i) => vars.get(*i).copied().unwrap_or(0.0),
            Node::Add(a, b) => a.eval(vars) + b.eval(vars),
            Node::Sub(a, b) => a.eval(vars) - b.eval(vars),
            Node::Mul(a, b) => a.eval(vars) * b.eval(vars),
            Node::Div(a, b) => a.eval(vars) / b.eval(vars),
            Node::Neg(a) => -a.eval(vars),
            Node::Unary(f, a) => f(a.eval(vars)),
            Node::Binary(f, a, b) => f(a.eval(vars), b.eval(vars)),
            Node::Powi(a, n) => a.eval(vars).powi(*n),
            Node::If(c, a, b) => {
                if c.holds(vars) {
                    a.eval(vars)
                } else {
                    b.eval(vars)
                }
            }
        }
    }
}

impl Cond {
    fn constant(&self) -> bool {
        let constant = |n: &Node| matches!(n, Node::Const(_));
        match self {
            Cond::Compare(_, a, b) => constant(a) && constant(b),
            Cond::And(a, b) | Cond::Or(a, b) => a.constant() && b.constant(),
            Cond::Not(a) => a.constant(),
        }
    }

    fn size(&self) -> usize {
        match self {
            Cond::Compare(_, a, b) => 1 + a.size() + b.size(),
            Cond::And(a, b) | Cond::Or(a, b) => 1 + a.size() + b.size(),
            Cond::Not(a) => 1 + a.size(),
        }
    }

    fn holds(&self, vars: &[f64]) -> bool {
        match self {
            Cond::Compare(f, a, b) => f(a.eval(vars), b.eval(vars)),
            Cond::And(a, b) => a.holds(vars) && b.holds(vars),
            Cond::Or(a, b) => a.holds(vars) || b.holds(vars),
            Cond::Not(a) => !a.holds(vars),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::program::body_of;

    fn run(text: &str, vars: &[f64]) -> Option<f64> {
        let body = body_of(text)?;
        let parameters = ["x".to_owned(), "y".to_owned()];
        let constants = [("K".to_owned(), 10.0)];
        Some(compile(&body, &Scope { parameters: &parameters, constants: &constants })?.eval(vars))
    }

    #[test]
    fn it_computes_as_rust_does() {
        let f = "fn priority(x: f64, y: f64) -> f64 { if x < y && !(y > K) { f64::powi(x, 2) - div(y, 0.0) } else { -f64::max(sqrt(-x), K) / 2.0 } }";
        assert_eq!(run(f, &[2.0, 3.0]), Some(4.0 - 3.0));
        assert_eq!(run(f, &[2.0, 30.0]), Some(-5.0));
        assert_eq!(run(f, &[-400.0, 20.0]), Some(-10.0));
    }

    #[test]
    fn constant_parts_are_computed_once_to_the_same_value() {
        let parameters = ["x".to_owned()];
        let constants = [("K".to_owned(), 10.0)];
        let scope = Scope { parameters: &parameters, constants: &constants };
        let compiled = |text: &str| compile(&body_of(text).unwrap(), &scope).unwrap();
        let f = compiled(
            "fn priority(x: f64) -> f64 { x * (K / 3.0 - sqrt(2.0)) + (if x > 1.0 { 0.5 } else { 0.5 }) + (if K < 2.0 { x } else { -x }) }",
        );
        assert_eq!(f.size(), 8, "x * c + c + (-x): {f:?}");
        for x in [0.0, 1.5, -7.25] {
            let expected = x * (10.0 / 3.0 - 2f64.sqrt()) + 0.5 + -x;
            assert_eq!(f.eval(&[x]).to_bits(), expected.to_bits());
        }
        assert_eq!(compiled("fn priority(x: f64) -> f64 { if x > 0.0 { x } else { 1.0 } }").size(), 6);
    }

    #[test]
    fn unknown_names_and_forms_are_refused() {
        assert_eq!(run("fn priority(x: f64) -> f64 { z + 1.0 }", &[1.0]), None);
        assert_eq!(run("fn priority(x: f64) -> f64 { x.sin() }", &[1.0]), None);
        assert_eq!(run("fn priority(x: f64) -> f64 { let a = x; a }", &[1.0]), None);
        assert_eq!(run("fn priority(x: f64) -> f64 { f64::powi(x, n) }", &[1.0]), None);
    }
}
