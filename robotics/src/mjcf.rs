//! The part of MJCF (MuJoCo's XML robot format) that a primitive-shape model needs: the body
//! tree with inertials, hinge joints with axes and ranges, collision primitives, motor limits and
//! keyframes, with default classes resolved. Meshes and visual-only geoms are skipped.
//!
//! The reader is strict where a wrong guess would change the physics (an unknown geom type, a
//! malformed number) and quiet about what it does not simulate (materials, sites, solver options).

use std::collections::HashMap;

/// Largest MJCF file read, in bytes (the Go2's is 11.5 KB).
pub const MAX_MJCF_BYTES: usize = 1 << 20;
/// Most bodies a model may have.
pub const MAX_BODIES: usize = 256;

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum MjcfError {
    #[error("the MJCF file is {bytes} bytes; the limit is {limit}")]
    TooLarge { bytes: usize, limit: usize },
    #[error("not well-formed XML: {0}")]
    Xml(String),
    #[error("<{element}> {name}: {reason}")]
    Invalid { element: String, name: String, reason: String },
}

/// A rigid body of the tree, in depth-first order (a parent comes before its children).
#[derive(Debug, Clone, PartialEq)]
pub struct Body {
    pub name: String,
    /// Index of the parent body; `None` for a body attached to the world.
    pub parent: Option<usize>,
    /// Position and orientation (w, x, y, z) in the parent's frame.
    pub pos: [f64; 3],
    pub quat: [f64; 4],
    pub inertial: Inertial,
    /// The hinge that connects the body to its parent; `None` for a free or welded body.
    pub joint: Option<Hinge>,
    /// Whether the body has a `<freejoint/>` (the floating base).
    pub free: bool,
    pub geoms: Vec<Geom>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Inertial {
    pub pos: [f64; 3],
    /// Orientation (w, x, y, z) of the principal axes.
    pub quat: [f64; 4],
    pub mass: f64,
    pub diaginertia: [f64; 3],
}

/// A revolute joint at the body's origin.
#[derive(Debug, Clone, PartialEq)]
pub struct Hinge {
    pub name: String,
    pub axis: [f64; 3],
    /// Lower and upper limit in radians, when limited.
    pub range: Option<[f64; 2]>,
}

/// A collision primitive in its body's frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Geom {
    pub name: Option<String>,
    pub shape: Shape,
    pub pos: [f64; 3],
    pub quat: [f64; 4],
    /// Sliding friction (MJCF's first friction coefficient).
    pub friction: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    Sphere {
        radius: f64,
    },
    /// Half-extents.
    Box {
        half: [f64; 3],
    },
    /// Along the geom's local Z axis, as MJCF has it.
    Cylinder {
        radius: f64,
        half_length: f64,
    },
    Capsule {
        radius: f64,
        half_length: f64,
    },
}

/// A motor on a joint, with its torque limit.
#[derive(Debug, Clone, PartialEq)]
pub struct Motor {
    pub name: String,
    pub joint: String,
    /// Largest torque magnitude (from `ctrlrange`), N·m.
    pub torque_limit: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Keyframe {
    pub name: String,
    /// Free joint position (3), orientation (w, x, y, z), then one angle per hinge in body order.
    pub qpos: Vec<f64>,
}

/// A robot as read from MJCF.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub name: String,
    pub bodies: Vec<Body>,
    pub motors: Vec<Motor>,
    pub keyframes: Vec<Keyframe>,
}

impl Model {
    pub fn keyframe(&self, name: &str) -> Option<&Keyframe> {
        self.keyframes.iter().find(|k| k.name == name)
    }

    /// The index of the body whose hinge is called `joint`.
    pub fn body_of_joint(&self, joint: &str) -> Option<usize> {
        self.bodies.iter().position(|b| b.joint.as_ref().is_some_and(|h| h.name == joint))
    }
}

/// Default classes: each holds attribute templates per element, and a parent class.
struct Defaults<'a> {
    classes: HashMap<String, DefaultClass<'a>>,
}

struct DefaultClass<'a> {
    parent: Option<String>,
    templates: HashMap<&'a str, roxmltree::Node<'a, 'a>>,
}

const MAIN_CLASS: &str = "main";

impl<'a> Defaults<'a> {
    fn read(root: roxmltree::Node<'a, 'a>) -> Defaults<'a> {
        let mut defaults = Defaults { classes: HashMap::new() };
        for top in root.children().filter(|n| n.has_tag_name("default")) {
            defaults.add(top, None);
        }
        defaults
    }

    fn add(&mut self, node: roxmltree::Node<'a, 'a>, parent: Option<String>) {
        let name = node.attribute("class").unwrap_or(MAIN_CLASS).to_owned();
        let mut templates = HashMap::new();
        for child in node.children().filter(|n| n.is_element()) {
            if child.has_tag_name("default") {
                self.add(child, Some(name.clone()));
            } else {
                templates.insert(child.tag_name().name(), child);
            }
        }
        self.classes.insert(name, DefaultClass { parent, templates });
    }

    /// The attribute as the element sets it, or as its class chain does.
    fn attribute(&self, element: roxmltree::Node<'a, 'a>, class: &str, attr: &str) -> Option<&'a str> {
        if let Some(value) = element.attribute(attr) {
            return Some(value);
        }
        let tag = element.tag_name().name();
        let mut current = Some(class.to_owned());
        // Bounded by the number of classes, so a cycle cannot loop forever.
        for _ in 0..=self.classes.len() {
            let Some(name) = current else { break };
            let Some(class) = self.classes.get(&name) else { break };
            if let Some(value) = class.templates.get(tag).and_then(|t| t.attribute(attr)) {
                return Some(value);
            }
            current = class.parent.clone();
        }
        None
    }
}

/// Parses an MJCF document.
pub fn parse(text: &str) -> Result<Model, MjcfError> {
    if text.len() > MAX_MJCF_BYTES {
        return Err(MjcfError::TooLarge { bytes: text.len(), limit: MAX_MJCF_BYTES });
    }
    let document = roxmltree::Document::parse(text).map_err(|e| MjcfError::Xml(e.to_string()))?;
    let root = document.root_element();
    if !root.has_tag_name("mujoco") {
        return Err(invalid(root, "the root element must be <mujoco>"));
    }
    let defaults = Defaults::read(root);
    let mut bodies = Vec::new();
    for world in root.children().filter(|n| n.has_tag_name("worldbody")) {
        for body in world.children().filter(|n| n.has_tag_name("body")) {
            read_body(&defaults, body, None, MAIN_CLASS, &mut bodies)?;
        }
    }
    let mut motors = Vec::new();
    for actuators in root.children().filter(|n| n.has_tag_name("actuator")) {
        for motor in actuators.children().filter(|n| n.has_tag_name("motor")) {
            motors.push(read_motor(&defaults, motor)?);
        }
    }
    let mut keyframes = Vec::new();
    for keys in root.children().filter(|n| n.has_tag_name("keyframe")) {
        for key in keys.children().filter(|n| n.has_tag_name("key")) {
            let name = key.attribute("name").unwrap_or_default().to_owned();
            let qpos = numbers(key, key.attribute("qpos").unwrap_or_default())?;
            keyframes.push(Keyframe { name, qpos });
        }
    }
    Ok(Model { name: root.attribute("model").unwrap_or_default().to_owned(), bodies, motors, keyframes })
}

fn read_body<'a>(
    defaults: &Defaults<'a>,
    node: roxmltree::Node<'a, 'a>,
    parent: Option<usize>,
    inherited_class: &str,
    bodies: &mut Vec<Body>,
) -> Result<(), MjcfError> {
    if bodies.len() >= MAX_BODIES {
        return Err(invalid(node, &format!("more than {MAX_BODIES} bodies")));
    }
    let class = node.attribute("childclass").unwrap_or(inherited_class).to_owned();
    let element_class = |n: roxmltree::Node<'a, 'a>| n.attribute("class").unwrap_or(&class).to_owned();
    let inertial_node = node
        .children()
        .find(|n| n.has_tag_name("inertial"))
        .ok_or_else(|| invalid(node, "a body needs an <inertial> (masses are not inferred from geoms)"))?;
    let inertial = Inertial {
        pos: vector(inertial_node, inertial_node.attribute("pos"), [0.0; 3])?,
        quat: vector(inertial_node, inertial_node.attribute("quat"), [1.0, 0.0, 0.0, 0.0])?,
        mass: number(inertial_node, inertial_node.attribute("mass").unwrap_or("0"))?,
        diaginertia: vector(inertial_node, inertial_node.attribute("diaginertia"), [0.0; 3])?,
    };
    let mut joint = None;
    for hinge in node.children().filter(|n| n.has_tag_name("joint")) {
        let class = element_class(hinge);
        let kind = defaults.attribute(hinge, &class, "type").unwrap_or("hinge");
        if kind != "hinge" || joint.is_some() {
            return Err(invalid(hinge, "only one hinge joint per body is supported"));
        }
        let range = match defaults.attribute(hinge, &class, "range") {
            Some(text) => Some(vector(hinge, Some(text), [0.0; 2])?),
            None => None,
        };
        joint = Some(Hinge {
            name: hinge.attribute("name").unwrap_or_default().to_owned(),
            axis: vector(hinge, defaults.attribute(hinge, &class, "axis"), [0.0, 0.0, 1.0])?,
            range,
        });
    }
    let free = node.children().any(|n| n.has_tag_name("freejoint"));
    let mut geoms = Vec::new();
    for geom in node.children().filter(|n| n.has_tag_name("geom")) {
        if let Some(geom) = read_geom(defaults, geom, &element_class(geom))? {
            geoms.push(geom);
        }
    }
    let index = bodies.len();
    bodies.push(Body {
        name: node.attribute("name").unwrap_or_default().to_owned(),
        parent,
        pos: vector(node, node.attribute("pos"), [0.0; 3])?,
        quat: vector(node, node.attribute("quat"), [1.0, 0.0, 0.0, 0.0])?,
        inertial,
        joint,
        free,
        geoms,
    });
    for child in node.children().filter(|n| n.has_tag_name("body")) {
        read_body(defaults, child, Some(index), &class, bodies)?;
    }
    Ok(())
}

/// A collision geom, or `None` for a visual-only one (no contacts, or a mesh).
fn read_geom<'a>(
    defaults: &Defaults<'a>,
    node: roxmltree::Node<'a, 'a>,
    class: &str,
) -> Result<Option<Geom>, MjcfError> {
    let attr = |name: &str| defaults.attribute(node, class, name);
    let kind = attr("type").unwrap_or("sphere");
    let visual_only = attr("contype") == Some("0") && attr("conaffinity") == Some("0");
    if visual_only || kind == "mesh" {
        return Ok(None);
    }
    let size = numbers(node, attr("size").unwrap_or_default())?;
    let need = |n: usize| {
        if size.len() < n { Err(invalid(node, &format!("a {kind} needs {n} size values"))) } else { Ok(()) }
    };
    let shape = match kind {
        "sphere" => {
            need(1)?;
            Shape::Sphere { radius: size[0] }
        }
        "box" => {
            need(3)?;
            Shape::Box { half: [size[0], size[1], size[2]] }
        }
        "cylinder" => {
            need(2)?;
            Shape::Cylinder { radius: size[0], half_length: size[1] }
        }
        "capsule" => {
            need(2)?;
            Shape::Capsule { radius: size[0], half_length: size[1] }
        }
        other => return Err(invalid(node, &format!("geom type `{other}` is not supported"))),
    };
    let friction = numbers(node, attr("friction").unwrap_or("1"))?.first().copied().unwrap_or(1.0);
    Ok(Some(Geom {
        name: node.attribute("name").map(str::to_owned),
        shape,
        pos: vector(node, attr("pos"), [0.0; 3])?,
        quat: vector(node, attr("quat"), [1.0, 0.0, 0.0, 0.0])?,
        friction,
    }))
}

fn read_motor<'a>(defaults: &Defaults<'a>, node: roxmltree::Node<'a, 'a>) -> Result<Motor, MjcfError> {
    let class = node.attribute("class").unwrap_or(MAIN_CLASS);
    let range: [f64; 2] = vector(node, defaults.attribute(node, class, "ctrlrange"), [0.0; 2])?;
    let joint = node.attribute("joint").ok_or_else(|| invalid(node, "a motor needs a joint"))?;
    Ok(Motor {
        name: node.attribute("name").unwrap_or_default().to_owned(),
        joint: joint.to_owned(),
        torque_limit: range[0].abs().max(range[1].abs()),
    })
}

fn invalid(node: roxmltree::Node<'_, '_>, reason: &str) -> MjcfError {
    MjcfError::Invalid {
        element: node.tag_name().name().to_owned(),
        name: node.attribute("name").unwrap_or("(unnamed)").to_owned(),
        reason: reason.to_owned(),
    }
}

fn number(node: roxmltree::Node<'_, '_>, text: &str) -> Result<f64, MjcfError> {
    match text.trim().parse::<f64>() {
        Ok(value) if value.is_finite() => Ok(value),
        _ => Err(invalid(node, &format!("`{text}` is not a finite number"))),
    }
}

fn numbers(node: roxmltree::Node<'_, '_>, text: &str) -> Result<Vec<f64>, MjcfError> {
    text.split_whitespace().map(|part| number(node, part)).collect()
}

/// Exactly `N` numbers, or `default` when the attribute is absent.
fn vector<const N: usize>(
    node: roxmltree::Node<'_, '_>,
    text: Option<&str>,
    default: [f64; N],
) -> Result<[f64; N], MjcfError> {
    let Some(text) = text else { return Ok(default) };
    let values = numbers(node, text)?;
    values.try_into().map_err(|v: Vec<f64>| invalid(node, &format!("expected {N} numbers, found {}", v.len())))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"<mujoco model="m">
      <default><default class="a"><joint axis="1 0 0" range="-1 1"/><geom friction="0.5"/>
        <default class="b"><joint range="-2 2"/></default></default></default>
      <worldbody><body name="base" pos="0 0 1" childclass="a">
        <inertial pos="0 0 0" mass="2" diaginertia="1 1 1"/><freejoint/>
        <geom type="box" size="1 2 3"/>
        <geom type="mesh" mesh="x"/>
        <body name="leg" pos="1 0 0"><inertial pos="0 0 0" mass="1" diaginertia="1 1 1"/>
          <joint name="j" class="b"/><geom size="0.1"/></body>
      </body></worldbody>
      <actuator><motor name="m" joint="j" ctrlrange="-3 3"/></actuator>
      <keyframe><key name="home" qpos="0 0 1 1 0 0 0 0.5"/></keyframe>
    </mujoco>"#;

    #[test]
    fn classes_resolve_through_their_parents() {
        let model = parse(SAMPLE).unwrap();
        assert_eq!(model.bodies.len(), 2);
        assert!(model.bodies[0].free);
        assert_eq!(model.bodies[0].geoms.len(), 1, "the mesh is visual only");
        let hinge = model.bodies[1].joint.as_ref().unwrap();
        assert_eq!(hinge.axis, [1.0, 0.0, 0.0], "from class a");
        assert_eq!(hinge.range, Some([-2.0, 2.0]), "class b overrides a");
        assert_eq!(model.bodies[1].geoms[0].friction, 0.5, "childclass reaches nested bodies");
        assert_eq!(model.motors[0].torque_limit, 3.0);
        assert_eq!(model.keyframe("home").unwrap().qpos.len(), 8);
        assert_eq!(model.body_of_joint("j"), Some(1));
    }

    #[test]
    fn malformed_numbers_and_unknown_shapes_are_refused() {
        let bad = SAMPLE.replace("mass=\"2\"", "mass=\"two\"");
        assert!(matches!(parse(&bad), Err(MjcfError::Invalid { .. })));
        let bad = SAMPLE.replace("type=\"box\"", "type=\"hfield\"");
        assert!(parse(&bad).unwrap_err().to_string().contains("hfield"));
        assert!(matches!(parse("<mujoco><worldbody>"), Err(MjcfError::Xml(_))));
    }
}
