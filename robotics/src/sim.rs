//! One rollout's world: the Go2 on flat ground under PD position control at 50 Hz.
//!
//! Each control step sets the 12 motor targets to `home + action_scale · action` (kp 20 N·m/rad,
//! kd 0.5 N·m·s/rad, torques capped at the MJCF's limits) and advances the physics by a fixed
//! number of substeps. Everything is single-threaded with a fixed timestep and rapier's
//! `enhanced-determinism`, so the same actions give the same trajectory, bit for bit.

use crate::api::{FEET, JOINTS, Observation};
use crate::go2::{self, Go2};
use rapier3d::prelude::*;

/// The control and physics settings of a rollout.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SimSettings {
    /// Control steps per second.
    pub control_hz: f64,
    /// Physics steps per control step.
    pub substeps: u32,
    pub kp: f64,
    pub kd: f64,
    /// Radians of joint target per unit of action.
    pub action_scale: f64,
    /// Height of the base at the start, m (the original task's 0.42).
    pub initial_height: f64,
    /// A rollout ends when roll or pitch passes this, degrees.
    pub max_tilt_degrees: f64,
}

impl Default for SimSettings {
    fn default() -> Self {
        SimSettings {
            control_hz: 50.0,
            substeps: 4,
            kp: 20.0,
            kd: 0.5,
            action_scale: 0.25,
            initial_height: 0.42,
            max_tilt_degrees: 30.0,
        }
    }
}

/// Most substeps per control step (the physics cost of a step grows with it).
pub const MAX_SUBSTEPS: u32 = 32;

/// A Go2 on flat ground, ready to step.
pub struct Simulation {
    world: PhysicsWorld,
    settings: SimSettings,
    base: RigidBodyHandle,
    /// The multibody link id of each actuated joint, in action order.
    links: [usize; JOINTS],
    home: [f64; JOINTS],
    feet: [ColliderHandle; FEET],
    foot_radius: [f64; FEET],
    ground: ColliderHandle,
    steps: u32,
}

impl Simulation {
    pub fn new(robot: &Go2, settings: SimSettings) -> Simulation {
        let substeps = settings.substeps.clamp(1, MAX_SUBSTEPS);
        let mut world = PhysicsWorld::new();
        world.gravity = Vector::new(0.0, 0.0, -9.81);
        world.integration_parameters.dt = (1.0 / (settings.control_hz * substeps as f64)) as f32;

        let ground = world.colliders.insert(
            ColliderBuilder::cuboid(100.0, 100.0, 0.1)
                .translation(Vector::new(0.0, 0.0, -0.1))
                .friction(1.0)
                .friction_combine_rule(CoefficientCombineRule::Max),
        );

        // Bodies at their rest poses (all joint angles 0), each pose composed from its parent's.
        let bodies = &robot.model.bodies;
        let mut poses: Vec<Pose> = Vec::with_capacity(bodies.len());
        let mut handles = Vec::with_capacity(bodies.len());
        let mut geom_handles: Vec<Vec<ColliderHandle>> = Vec::with_capacity(bodies.len());
        for body in bodies {
            let local = Pose::from_parts(go2::vector(body.pos), go2::rotation(body.quat));
            let pose = match body.parent {
                Some(parent) => poses[parent] * local,
                None => Pose::from_translation(Vector::new(0.0, 0.0, settings.initial_height as f32)),
            };
            poses.push(pose);
            let rigid = RigidBodyBuilder::dynamic()
                .pose(pose)
                .additional_mass_properties(go2::mass_properties(&body.inertial))
                .can_sleep(false);
            let handle = world.bodies.insert(rigid);
            let colliders = body
                .geoms
                .iter()
                .map(|geom| world.colliders.insert_with_parent(go2::collider(geom), handle, &mut world.bodies))
                .collect();
            handles.push(handle);
            geom_handles.push(colliders);
        }

        let mut joint_handles = vec![None; bodies.len()];
        for (i, body) in bodies.iter().enumerate() {
            let (Some(parent), Some(hinge)) = (body.parent, &body.joint) else { continue };
            let action = robot.joint_bodies.iter().position(|&b| b == i);
            let mut joint = RevoluteJointBuilder::new(go2::vector(hinge.axis).normalize())
                .local_anchor1(go2::vector(body.pos))
                .local_anchor2(Vector::ZERO)
                .contacts_enabled(false);
            if let Some([lo, hi]) = hinge.range {
                joint = joint.limits([lo as f32, hi as f32]);
            }
            if let Some(a) = action {
                joint = joint
                    .motor_model(MotorModel::ForceBased)
                    .motor_position(robot.home[a] as f32, settings.kp as f32, settings.kd as f32)
                    .motor_max_force(robot.torque_limits[a] as f32);
            }
            joint_handles[i] = world.multibody_joints.insert(handles[parent], handles[i], joint, true);
        }

        let mut links = [0; JOINTS];
        for (a, &body) in robot.joint_bodies.iter().enumerate() {
            let handle = joint_handles[body].expect("every actuated joint was inserted");
            links[a] = world.multibody_joints.get(handle).expect("an inserted joint is in its set").1;
        }
        let root_handle = joint_handles.iter().flatten().next().copied().expect("the Go2 has joints");
        let (multibody, _) = world.multibody_joints.get_mut(root_handle).expect("an inserted joint is in its set");
        for (a, &link) in links.iter().enumerate() {
            let link = multibody.link_mut(link).expect("the link exists");
            link.joint.apply_displacement(&[robot.home[a] as f32]);
        }
        // The free root must not be damped: that would be air drag on the whole robot.
        for dof in 0..6 {
            multibody.damping_mut()[dof] = 0.0;
        }
        multibody.forward_kinematics(&world.bodies, true);
        multibody.update_rigid_bodies(&mut world.bodies, true);

        let feet = std::array::from_fn(|f| {
            let (body, geom) = robot.feet[f];
            geom_handles[body][geom]
        });
        Simulation {
            world,
            settings: SimSettings { substeps, ..settings },
            base: handles[0],
            links,
            home: robot.home,
            feet,
            foot_radius: std::array::from_fn(|f| robot.foot_radius(f)),
            ground,
            steps: 0,
        }
    }

    pub fn settings(&self) -> &SimSettings {
        &self.settings
    }

    /// Seconds per control step.
    pub fn dt(&self) -> f64 {
        1.0 / self.settings.control_hz
    }

    /// Control steps taken so far.
    pub fn steps(&self) -> u32 {
        self.steps
    }

    /// Sets the joint targets from `action` and advances one control step.
    pub fn step(&mut self, action: &[f64; JOINTS]) {
        let (kp, kd) = (self.settings.kp as f32, self.settings.kd as f32);
        let targets: [f64; JOINTS] = std::array::from_fn(|a| self.home[a] + self.settings.action_scale * action[a]);
        let links = self.links;
        let multibody = self.multibody_mut();
        for (&target, link) in targets.iter().zip(links) {
            let link = multibody.link_mut(link).expect("the link exists");
            link.joint.data.set_motor_position(JointAxis::AngX, target as f32, kp, kd);
        }
        for _ in 0..self.settings.substeps {
            self.world.step();
        }
        self.steps += 1;
    }

    fn multibody_mut(&mut self) -> &mut Multibody {
        let link =
            self.world.multibody_joints.rigid_body_link(self.base).copied().expect("the base is in the multibody");
        self.world.multibody_joints.get_multibody_mut(link.multibody).expect("the multibody exists")
    }

    fn multibody(&self) -> &Multibody {
        let link = self.world.multibody_joints.rigid_body_link(self.base).expect("the base is in the multibody");
        self.world.multibody_joints.get_multibody(link.multibody).expect("the multibody exists")
    }

    /// What the robot senses now.
    pub fn observe(&self) -> Observation {
        let base = &self.world.bodies[self.base];
        let rotation = *base.rotation();
        let to_body = rotation.inverse();
        let position = base.translation();
        let linear = to_body * base.linvel();
        let angular = to_body * base.angvel();
        let gravity = to_body * Vector::new(0.0, 0.0, -1.0);
        let (roll, pitch) = roll_pitch(rotation);
        let multibody = self.multibody();
        let mut joint_positions = [0.0; JOINTS];
        let mut joint_velocities = [0.0; JOINTS];
        for (a, &link) in self.links.iter().enumerate() {
            let link = multibody.link(link).expect("the link exists");
            joint_positions[a] = link.joint.coords()[3] as f64 - self.home[a];
            joint_velocities[a] = multibody.joint_velocity(link)[0] as f64;
        }
        let mut foot_contacts = [false; FEET];
        let mut foot_heights = [0.0; FEET];
        for (f, &foot) in self.feet.iter().enumerate() {
            foot_contacts[f] = self
                .world
                .narrow_phase
                .contact_pair(foot, self.ground)
                .is_some_and(|pair| pair.has_any_active_contact());
            foot_heights[f] = self.world.colliders[foot].translation().z as f64 - self.foot_radius[f];
        }
        let triple = |v: Vector| [v.x as f64, v.y as f64, v.z as f64];
        Observation {
            base_position: triple(position),
            base_linear_velocity: triple(linear),
            base_angular_velocity: triple(angular),
            projected_gravity: triple(gravity),
            roll,
            pitch,
            joint_positions,
            joint_velocities,
            foot_contacts,
            foot_heights,
        }
    }

    /// Whether the rollout must end: tilted past the limit, or a state that is not finite.
    pub fn fallen(&self, observation: &Observation) -> bool {
        let limit = self.settings.max_tilt_degrees.to_radians();
        let finite = observation.base_position.iter().chain(&observation.base_linear_velocity).all(|v| v.is_finite());
        !finite || observation.roll.abs() > limit || observation.pitch.abs() > limit
    }
}

/// Roll (about x) and pitch (about y) of a rotation, in radians (Z-Y-X Euler angles).
fn roll_pitch(q: Rotation) -> (f64, f64) {
    let (w, x, y, z) = (q.w as f64, q.x as f64, q.y as f64, q.z as f64);
    let roll = (2.0 * (w * x + y * z)).atan2(1.0 - 2.0 * (x * x + y * y));
    let pitch = (2.0 * (w * y - z * x)).clamp(-1.0, 1.0).asin();
    (roll, pitch)
}
