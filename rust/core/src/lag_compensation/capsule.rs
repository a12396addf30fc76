//! Hitbox capsules and the hit tests run against them: ray and sphere queries built on
//! point-to-segment distance, with degenerate inputs (zero direction, parallel rays, short
//! capsules, non-finite values) handled without panicking.

use glam::Vec3;
use serde::{Deserialize, Serialize};

/// Lengths below this (metres, or metres squared where noted) are treated as zero.
const EPSILON_M: f32 = 1e-6;

/// An upright capsule hitbox, standing on its base like a character (Z up).
///
/// The capsule is the set of points within `radius_m` of the vertical segment from
/// `base_m + radius_m` to `base_m + (height_m - radius_m)` on Z. Invariants (server data,
/// checked with `debug_assert!` on record): finite fields, `radius_m >= 0`,
/// `height_m >= 0`. A `height_m` below `2 * radius_m` degenerates to a sphere of `radius_m`
/// resting on `base_m`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Capsule {
    /// Bottom of the capsule (the character's feet), metres.
    pub base_m: Vec3,
    /// Radius of the capsule, metres.
    pub radius_m: f32,
    /// Total height from the base to the top, metres.
    pub height_m: f32,
}

impl Capsule {
    /// A capsule standing at `base_m`.
    #[must_use]
    pub fn new(base_m: Vec3, radius_m: f32, height_m: f32) -> Self {
        Capsule {
            base_m,
            radius_m,
            height_m,
        }
    }

    /// True when every field is finite and the sizes are not negative.
    #[must_use]
    pub fn is_valid(&self) -> bool {
        self.base_m.is_finite()
            && self.radius_m.is_finite()
            && self.height_m.is_finite()
            && self.radius_m >= 0.0
            && self.height_m >= 0.0
    }

    /// The centres of the bottom and top hemispheres (equal for a degenerate capsule).
    #[must_use]
    pub fn segment_m(&self) -> (Vec3, Vec3) {
        let radius_m = self.radius_m.max(0.0);
        let bottom = self.base_m + Vec3::Z * radius_m;
        let top = self.base_m + Vec3::Z * (self.height_m - radius_m).max(radius_m);
        (bottom, top)
    }

    /// Linear blend from `self` (`t = 0`) to `other` (`t = 1`) of position and size.
    #[must_use]
    pub fn lerp(&self, other: &Capsule, t: f32) -> Capsule {
        Capsule {
            base_m: self.base_m.lerp(other.base_m, t),
            radius_m: self.radius_m + (other.radius_m - self.radius_m) * t,
            height_m: self.height_m + (other.height_m - self.height_m) * t,
        }
    }

    /// Distance from `point_m` to the capsule's surface; negative inside.
    #[must_use]
    pub fn signed_distance_m(&self, point_m: Vec3) -> f32 {
        let (a, b) = self.segment_m();
        point_m.distance(closest_point_on_segment(a, b, point_m)) - self.radius_m.max(0.0)
    }
}

/// A ray cast by a shot: from `origin_m` along `dir` (any length, normalized by the test) up
/// to `max_dist_m`. Values come from the client, so every test tolerates garbage.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ray {
    /// Start of the ray, metres.
    pub origin_m: Vec3,
    /// Direction; need not be normalized. Zero or non-finite never hits.
    pub dir: Vec3,
    /// Longest distance that counts as a hit, metres.
    pub max_dist_m: f32,
}

/// The point of segment `a`-`b` closest to `p`; `a` when the segment is degenerate.
#[must_use]
pub fn closest_point_on_segment(a: Vec3, b: Vec3, p: Vec3) -> Vec3 {
    let ab = b - a;
    let len2 = ab.length_squared();
    if len2 <= EPSILON_M * EPSILON_M {
        return a;
    }
    let t = ((p - a).dot(ab) / len2).clamp(0.0, 1.0);
    a + ab * t
}

/// Distance along the ray to where it first enters `capsule`, if that is within
/// `max_dist_m`. An origin inside the capsule hits at 0. `dir` is normalized here; a zero or
/// non-finite direction, a non-finite origin, a negative or NaN `max_dist_m` never hit.
#[must_use]
pub fn ray_vs_capsule(
    capsule: &Capsule,
    origin_m: Vec3,
    dir: Vec3,
    max_dist_m: f32,
) -> Option<f32> {
    if !origin_m.is_finite() || !dir.is_finite() || max_dist_m.is_nan() || max_dist_m < 0.0 {
        return None;
    }
    let len = dir.length();
    if !len.is_finite() || len <= EPSILON_M {
        return None;
    }
    let dir = dir / len;
    let radius_m = capsule.radius_m.max(0.0);
    let (a, b) = capsule.segment_m();
    if origin_m.distance_squared(closest_point_on_segment(a, b, origin_m)) <= radius_m * radius_m {
        return Some(0.0);
    }
    // The origin is outside the capsule, so it is outside each of its parts (two spheres and
    // the cylindrical body) and the first entry into the union is the nearest first entry
    // into a part. The body's flat ends lie inside the spheres and need no test.
    let mut best: Option<f32> = None;
    let mut consider = |t: Option<f32>| {
        if let Some(t) = t
            && best.is_none_or(|b| t < b)
        {
            best = Some(t);
        }
    };
    consider(ray_vs_sphere(origin_m, dir, a, radius_m));
    consider(ray_vs_sphere(origin_m, dir, b, radius_m));
    consider(ray_vs_cylinder_side(origin_m, dir, a, b, radius_m));
    best.filter(|&t| t <= max_dist_m)
}

/// True when the sphere at `center_m` with `radius_m` touches or overlaps `capsule`.
/// Non-finite input or a negative/NaN radius never overlaps.
#[must_use]
pub fn sphere_vs_capsule(capsule: &Capsule, center_m: Vec3, radius_m: f32) -> bool {
    if !center_m.is_finite() || !radius_m.is_finite() || radius_m < 0.0 {
        return false;
    }
    let (a, b) = capsule.segment_m();
    let reach_m = radius_m + capsule.radius_m.max(0.0);
    center_m.distance_squared(closest_point_on_segment(a, b, center_m)) <= reach_m * reach_m
}

/// First entry of a unit-direction ray starting outside the sphere.
fn ray_vs_sphere(origin_m: Vec3, dir: Vec3, center_m: Vec3, radius_m: f32) -> Option<f32> {
    let oc = origin_m - center_m;
    let b = dir.dot(oc);
    let c = oc.length_squared() - radius_m * radius_m;
    let h = b * b - c;
    if h < 0.0 {
        return None;
    }
    // Starting outside (c > 0) both roots share a sign; negative means behind the origin.
    let t = -b - h.sqrt();
    (t >= 0.0).then_some(t)
}

/// First entry through the side of the finite cylinder around segment `a`-`b`, for a
/// unit-direction ray starting outside the infinite cylinder. Rays parallel to the axis, a
/// degenerate segment and origins inside the infinite cylinder give `None` (the spheres
/// then decide).
fn ray_vs_cylinder_side(origin_m: Vec3, dir: Vec3, a: Vec3, b: Vec3, radius_m: f32) -> Option<f32> {
    let axis = b - a;
    let len_m = axis.length();
    if len_m <= EPSILON_M {
        return None;
    }
    let u = axis / len_m;
    let oc = origin_m - a;
    let d_perp = dir - u * dir.dot(u);
    let oc_perp = oc - u * oc.dot(u);
    let qa = d_perp.length_squared();
    if qa <= EPSILON_M * EPSILON_M {
        return None;
    }
    let qb = d_perp.dot(oc_perp);
    let qc = oc_perp.length_squared() - radius_m * radius_m;
    if qc <= 0.0 {
        return None;
    }
    let h = qb * qb - qa * qc;
    if h < 0.0 {
        return None;
    }
    let t = (-qb - h.sqrt()) / qa;
    if t < 0.0 {
        return None;
    }
    let y = (oc + dir * t).dot(u);
    (0.0..=len_m).contains(&y).then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approx(a: f32, b: f32) -> bool {
        (a - b).abs() < 1e-4
    }

    /// A 1.8 m tall, 0.4 m radius capsule standing at the origin.
    fn body() -> Capsule {
        Capsule::new(Vec3::ZERO, 0.4, 1.8)
    }

    #[test]
    fn segment_of_normal_and_degenerate_capsules() {
        let (a, b) = body().segment_m();
        assert!(approx(a.z, 0.4) && approx(b.z, 1.4));
        let squat = Capsule::new(Vec3::new(1.0, 0.0, 0.0), 0.5, 0.6);
        let (a, b) = squat.segment_m();
        assert_eq!(a, b);
        assert!(approx(a.z, 0.5));
    }

    #[test]
    fn ray_hits_the_body_side() {
        let t = ray_vs_capsule(&body(), Vec3::new(-10.0, 0.0, 1.0), Vec3::X, 100.0).unwrap();
        assert!(approx(t, 9.6), "{t}");
        // Direction need not be normalized.
        let t2 = ray_vs_capsule(&body(), Vec3::new(-10.0, 0.0, 1.0), Vec3::X * 3.0, 100.0);
        assert!(approx(t2.unwrap(), 9.6));
    }

    #[test]
    fn ray_hits_the_caps_and_misses_beside() {
        // Straight down onto the head: parallel to the axis, only the top sphere can hit.
        let t = ray_vs_capsule(&body(), Vec3::new(0.0, 0.0, 10.0), -Vec3::Z, 100.0).unwrap();
        assert!(approx(t, 8.2), "{t}");
        // Straight up into the feet.
        let t = ray_vs_capsule(&body(), Vec3::new(0.0, 0.0, -5.0), Vec3::Z, 100.0).unwrap();
        assert!(approx(t, 5.0), "{t}");
        // Grazing the top hemisphere off-axis.
        let t = ray_vs_capsule(&body(), Vec3::new(-10.0, 0.0, 1.7), Vec3::X, 100.0).unwrap();
        let expected = 10.0 - (0.4f32 * 0.4 - 0.3 * 0.3).sqrt();
        assert!(approx(t, expected), "{t} vs {expected}");
        // Above the head, beside the body, parallel and beside, pointing away.
        assert_eq!(
            ray_vs_capsule(&body(), Vec3::new(-10.0, 0.0, 2.0), Vec3::X, 100.0),
            None
        );
        assert_eq!(
            ray_vs_capsule(&body(), Vec3::new(-10.0, 0.5, 1.0), Vec3::X, 100.0),
            None
        );
        assert_eq!(
            ray_vs_capsule(&body(), Vec3::new(0.5, 0.0, 10.0), -Vec3::Z, 100.0),
            None
        );
        assert_eq!(
            ray_vs_capsule(&body(), Vec3::new(-10.0, 0.0, 1.0), -Vec3::X, 100.0),
            None
        );
    }

    #[test]
    fn ray_respects_max_distance_and_inside_origin() {
        assert_eq!(
            ray_vs_capsule(&body(), Vec3::new(-10.0, 0.0, 1.0), Vec3::X, 9.0),
            None
        );
        assert_eq!(
            ray_vs_capsule(&body(), Vec3::new(0.1, 0.0, 1.0), Vec3::Y, 1.0),
            Some(0.0)
        );
    }

    #[test]
    fn degenerate_rays_never_hit_or_panic() {
        let origin = Vec3::new(-10.0, 0.0, 1.0);
        assert_eq!(ray_vs_capsule(&body(), origin, Vec3::ZERO, 100.0), None);
        assert_eq!(ray_vs_capsule(&body(), origin, Vec3::NAN, 100.0), None);
        assert_eq!(ray_vs_capsule(&body(), Vec3::NAN, Vec3::X, 100.0), None);
        assert_eq!(ray_vs_capsule(&body(), origin, Vec3::X, f32::NAN), None);
        assert_eq!(ray_vs_capsule(&body(), origin, Vec3::X, -1.0), None);
        assert_eq!(ray_vs_capsule(&body(), origin, Vec3::INFINITY, 100.0), None);
        assert!(ray_vs_capsule(&body(), origin, Vec3::X, f32::INFINITY).is_some());
    }

    #[test]
    fn ray_vs_sphere_shaped_capsule() {
        let ball = Capsule::new(Vec3::ZERO, 0.5, 0.0);
        let t = ray_vs_capsule(&ball, Vec3::new(-3.0, 0.0, 0.5), Vec3::X, 10.0).unwrap();
        assert!(approx(t, 2.5), "{t}");
        assert_eq!(
            ray_vs_capsule(&ball, Vec3::new(-3.0, 0.0, 1.1), Vec3::X, 10.0),
            None
        );
    }

    #[test]
    fn sphere_overlap_uses_segment_distance() {
        assert!(sphere_vs_capsule(&body(), Vec3::new(0.85, 0.0, 1.0), 0.5));
        assert!(!sphere_vs_capsule(&body(), Vec3::new(0.95, 0.0, 1.0), 0.5));
        // Above the head: distance to the top centre (1.4) is 1.0, reach 0.4 + 0.6.
        assert!(sphere_vs_capsule(&body(), Vec3::new(0.0, 0.0, 2.39), 0.6));
        assert!(!sphere_vs_capsule(&body(), Vec3::new(0.0, 0.0, 2.41), 0.6));
        assert!(!sphere_vs_capsule(&body(), Vec3::NAN, 1.0));
        assert!(!sphere_vs_capsule(&body(), Vec3::ZERO, -1.0));
        assert!(!sphere_vs_capsule(&body(), Vec3::ZERO, f32::NAN));
    }

    #[test]
    fn signed_distance_and_lerp() {
        assert!(approx(
            body().signed_distance_m(Vec3::new(1.4, 0.0, 1.0)),
            1.0
        ));
        assert!(body().signed_distance_m(Vec3::new(0.0, 0.0, 1.0)) < 0.0);
        let moved = Capsule::new(Vec3::new(2.0, 0.0, 0.0), 0.6, 2.0);
        let mid = body().lerp(&moved, 0.5);
        assert!(
            approx(mid.base_m.x, 1.0) && approx(mid.radius_m, 0.5) && approx(mid.height_m, 1.9)
        );
        assert!(body().is_valid());
        assert!(!Capsule::new(Vec3::ZERO, -1.0, 1.0).is_valid());
    }
}
