//! The Unitree Go2 as a rapier3d multibody, built from its MJCF: 13 bodies (the base on a free
//! root, three links per leg on revolute joints with the MJCF's axes and limits), the MJCF's
//! masses, inertias and collision primitives, and 12 force-based PD motors capped at the MJCF's
//! torque limits. The robot starts level at the configured height in its `home` pose.

use crate::api::{FEET, JOINTS};
use crate::mjcf::{self, Model, Shape};
use rapier3d::prelude::*;

/// The joints the policy drives, in action order.
pub const ACTUATED_JOINTS: [&str; JOINTS] = [
    "FL_hip_joint",
    "FL_thigh_joint",
    "FL_calf_joint",
    "FR_hip_joint",
    "FR_thigh_joint",
    "FR_calf_joint",
    "RL_hip_joint",
    "RL_thigh_joint",
    "RL_calf_joint",
    "RR_hip_joint",
    "RR_thigh_joint",
    "RR_calf_joint",
];
/// The foot geoms, in foot order.
pub const FOOT_GEOMS: [&str; FEET] = ["FL", "FR", "RL", "RR"];
/// The keyframe the default pose comes from.
pub const HOME_KEYFRAME: &str = "home";

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum ModelError {
    #[error(transparent)]
    Mjcf(#[from] mjcf::MjcfError),
    #[error("the model is not a Go2 as this domain drives it: {0}")]
    Shape(String),
}

/// The Go2 as read from MJCF and checked: what [`crate::sim::Simulation`] builds worlds from.
#[derive(Debug, Clone)]
pub struct Go2 {
    pub model: Model,
    /// The body driven by each actuated joint, in action order.
    pub joint_bodies: [usize; JOINTS],
    /// Joint angles of the `home` keyframe, in action order.
    pub home: [f64; JOINTS],
    /// Torque limits, in action order.
    pub torque_limits: [f64; JOINTS],
    /// (body, geom index) of each foot.
    pub feet: [(usize, usize); FEET],
}

impl Go2 {
    /// Reads and checks a Go2 MJCF document.
    pub fn from_mjcf(text: &str) -> Result<Go2, ModelError> {
        let model = mjcf::parse(text)?;
        Go2::from_model(model)
    }

    pub fn from_model(model: Model) -> Result<Go2, ModelError> {
        let shape = |reason: String| ModelError::Shape(reason);
        if model.bodies.first().is_none_or(|b| !b.free || b.parent.is_some()) {
            return Err(shape("the first body must be the free-floating base".into()));
        }
        if let Some(extra) = model.bodies.iter().skip(1).find(|b| b.parent.is_none() || b.free) {
            return Err(shape(format!("body `{}` is a second root", extra.name)));
        }
        if let Some(turned) = model.bodies.iter().find(|b| b.quat != [1.0, 0.0, 0.0, 0.0]) {
            return Err(shape(format!(
                "body `{}` is rotated in its parent; only translated bodies are supported",
                turned.name
            )));
        }
        let keyframe = model.keyframe(HOME_KEYFRAME).ok_or_else(|| shape("there is no `home` keyframe".into()))?;
        // The keyframe lists the hinges in body order after the free joint's 7 coordinates.
        let hinge_order: Vec<usize> = (0..model.bodies.len()).filter(|&i| model.bodies[i].joint.is_some()).collect();
        if keyframe.qpos.len() != 7 + hinge_order.len() {
            return Err(shape(format!(
                "the home keyframe has {} values, not {}",
                keyframe.qpos.len(),
                7 + hinge_order.len()
            )));
        }
        let mut joint_bodies = [0; JOINTS];
        let mut home = [0.0; JOINTS];
        let mut torque_limits = [0.0; JOINTS];
        for (i, name) in ACTUATED_JOINTS.iter().enumerate() {
            let body = model.body_of_joint(name).ok_or_else(|| shape(format!("there is no joint `{name}`")))?;
            let motor = model
                .motors
                .iter()
                .find(|m| m.joint == *name)
                .ok_or_else(|| shape(format!("joint `{name}` has no motor")))?;
            if motor.torque_limit <= 0.0 {
                return Err(shape(format!("the motor of `{name}` has no torque")));
            }
            joint_bodies[i] = body;
            torque_limits[i] = motor.torque_limit;
            let slot = hinge_order.iter().position(|&b| b == body).expect("a hinged body is in the hinge order");
            home[i] = keyframe.qpos[7 + slot];
        }
        let mut feet = [(0, 0); FEET];
        for (i, name) in FOOT_GEOMS.iter().enumerate() {
            feet[i] = model
                .bodies
                .iter()
                .enumerate()
                .find_map(|(b, body)| body.geoms.iter().position(|g| g.name.as_deref() == Some(name)).map(|g| (b, g)))
                .ok_or_else(|| shape(format!("there is no foot geom `{name}`")))?;
            if !matches!(model.bodies[feet[i].0].geoms[feet[i].1].shape, Shape::Sphere { .. }) {
                return Err(shape(format!("foot `{name}` is not a sphere")));
            }
        }
        Ok(Go2 { model, joint_bodies, home, torque_limits, feet })
    }

    /// Radius of a foot sphere.
    pub fn foot_radius(&self, foot: usize) -> f64 {
        let (body, geom) = self.feet[foot];
        match self.model.bodies[body].geoms[geom].shape {
            Shape::Sphere { radius } => radius,
            _ => unreachable!("checked in from_model"),
        }
    }
}

/// MJCF's (w, x, y, z) as a rapier rotation.
pub(crate) fn rotation(quat: [f64; 4]) -> Rotation {
    let [w, x, y, z] = quat;
    Rotation::from_xyzw(x as f32, y as f32, z as f32, w as f32).normalize()
}

pub(crate) fn vector(v: [f64; 3]) -> Vector {
    Vector::new(v[0] as f32, v[1] as f32, v[2] as f32)
}

/// The collider of one MJCF geom, placed in its body's frame.
pub(crate) fn collider(geom: &mjcf::Geom) -> ColliderBuilder {
    let pose = Pose::from_parts(vector(geom.pos), rotation(geom.quat));
    let builder = match geom.shape {
        Shape::Sphere { radius } => ColliderBuilder::ball(radius as f32),
        Shape::Box { half } => ColliderBuilder::cuboid(half[0] as f32, half[1] as f32, half[2] as f32),
        Shape::Capsule { radius, half_length } => ColliderBuilder::capsule_z(half_length as f32, radius as f32),
        Shape::Cylinder { radius, half_length } => {
            // rapier's cylinders run along Y, MJCF's along Z: turn Y onto Z first.
            let turn = Pose::from_rotation(Rotation::from_rotation_x(std::f32::consts::FRAC_PI_2));
            return ColliderBuilder::cylinder(half_length as f32, radius as f32)
                .position(pose * turn)
                .friction(geom.friction as f32)
                .density(0.0);
        }
    };
    // Masses come from the MJCF's inertials, not from the shapes.
    builder.position(pose).friction(geom.friction as f32).density(0.0)
}

/// The mass properties of an MJCF inertial.
pub(crate) fn mass_properties(inertial: &mjcf::Inertial) -> MassProperties {
    MassProperties::with_principal_inertia_frame(
        vector(inertial.pos),
        inertial.mass as f32,
        vector(inertial.diaginertia),
        rotation(inertial.quat),
    )
}
