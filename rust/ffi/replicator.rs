//! `mmo_replicator`: interest management and replication priority for the clients of one
//! zone (`mmo_core::replication::Replicator`), standalone from the codec.
//!
//! Per tick: `mmo_replicator_update_entity` for every entity that moved; then per client
//! either the estimate mode (`mmo_replicator_select_within_budget`, then read the
//! `MMO_PLAN_LIST_SELECTED` list: already committed) or the encoder mode
//! (`mmo_replicator_plan_tick`, read `MMO_PLAN_LIST_CANDIDATES`, encode from the front, then
//! `mmo_replicator_commit` with the ids the datagram carried and its size). Entities of the
//! `ENTERED`/`LEFT` lists must enter/leave the client's view (e.g.
//! `mmo_snapshot_writer_remove_entity` for leaves).

use mmo_core::entity::EntityId;
use mmo_core::replication::{
    ClientId, Plan, PriorityCategory, ReplicationConfig, ReplicationError, Replicator, Viewer,
};
use mmo_core::time::{Tick, TickRate};

use crate::boundary::{self, FfiError, Out, OutSlice};
use crate::result::mmo_result;
use crate::types::mmo_vec3;

/// Replication priority category (pass as a plain `uint32_t`; other values give
/// `MMO_RESULT_INVALID_ENUM`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum mmo_priority_category {
    /// Always eligible, always first. Use sparingly.
    Critical = 0,
    /// Combat-relevant: other players, aggressive NPCs, projectiles.
    High = 1,
    /// Ordinary NPCs and interactive objects.
    Medium = 2,
    /// Ambient and cosmetic entities.
    Low = 3,
}

/// What a client looks from (`mmo_viewer.kind`, a plain `uint32_t`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum mmo_viewer_kind {
    /// Follow entity `entity_id` (its own entity is never in its visible set).
    Entity = 0,
    /// A fixed position `position_m`.
    Position = 1,
}

/// What a client looks from.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct mmo_viewer {
    /// A `mmo_viewer_kind` value.
    pub kind: u32,
    /// The followed entity (kind `MMO_VIEWER_KIND_ENTITY`).
    pub entity_id: u32,
    /// The fixed position, metres (kind `MMO_VIEWER_KIND_POSITION`; finite).
    pub position_m: mmo_vec3,
}

impl mmo_viewer {
    fn to_core(self) -> Result<Viewer, FfiError> {
        match self.kind {
            k if k == mmo_viewer_kind::Entity as u32 => {
                Ok(Viewer::Entity(EntityId(self.entity_id)))
            }
            k if k == mmo_viewer_kind::Position as u32 => Ok(Viewer::Position(
                self.position_m.finite("viewer.position_m")?,
            )),
            other => Err(FfiError::invalid_enum("viewer.kind", other)),
        }
    }
}

/// Which list of the client's current plan to read (`mmo_replicator_plan_ids`, a plain
/// `uint32_t`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum mmo_plan_list {
    /// Eligible entities in send order (encoder mode: encode from the front).
    Candidates = 0,
    /// Entities that entered the area of interest this tick, ascending.
    Entered = 1,
    /// Entities that left the area of interest (or were removed) this tick, ascending.
    Left = 2,
    /// The prefix of the candidates that fit the budget (estimate mode only; committed).
    Selected = 3,
}

/// Sizes of the client's current plan.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct mmo_plan_info {
    /// The planned tick.
    pub tick: u32,
    /// Bytes the client's budget allows this tick (0 while in debt).
    pub budget_bytes: u32,
    /// Length of the `CANDIDATES` list.
    pub candidate_count: u32,
    /// Length of the `ENTERED` list.
    pub entered_count: u32,
    /// Length of the `LEFT` list.
    pub left_count: u32,
    /// Length of the `SELECTED` list.
    pub selected_count: u32,
}

impl From<&Plan> for mmo_plan_info {
    fn from(p: &Plan) -> Self {
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        mmo_plan_info {
            tick: p.tick.0,
            budget_bytes: p.budget_bytes,
            candidate_count: count(p.candidates.len()),
            entered_count: count(p.entered.len()),
            left_count: count(p.left.len()),
            selected_count: count(p.selected.len()),
        }
    }
}

/// Configuration of a replicator. Start from `mmo_replication_config_default`. Distance
/// tiers are the core's defaults (30 Hz within 50 m, 10 Hz within 200 m, 2 Hz beyond).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct mmo_replication_config {
    /// Simulation tick rate, Hz (10..=60). Default 30.
    pub tick_rate_hz: u32,
    /// Entities farther than this (horizontally) are not replicated, metres (> 200, the
    /// last tier). Default 300.
    pub area_of_interest_radius_m: f32,
    /// Extra distance before a visible entity leaves, metres (>= 0). Default 10.
    pub aoi_hysteresis_m: f32,
    /// Spatial grid cell edge, metres (> 0). Default 50.
    pub cell_size_m: f32,
    /// Long-run snapshot budget per client, bytes per second (> 0). Default 10,000.
    pub budget_bytes_per_s: u32,
    /// Ticks of unused budget that may carry over. Default 2.
    pub max_carry_ticks: u32,
}

/// Opaque replicator of one zone.
pub struct mmo_replicator {
    inner: Replicator,
}

fn category(raw: u32) -> Result<PriorityCategory, FfiError> {
    u8::try_from(raw)
        .ok()
        .and_then(PriorityCategory::from_u8)
        .ok_or_else(|| FfiError::invalid_enum("category", raw))
}

fn replication_error(e: ReplicationError) -> FfiError {
    let code = match e {
        ReplicationError::Config(_) => mmo_result::InvalidConfig,
        ReplicationError::UnknownClient(_) => mmo_result::NotFound,
        ReplicationError::DuplicateClient(_) => mmo_result::AlreadyExists,
        ReplicationError::NothingPlanned(_) => mmo_result::Empty,
    };
    FfiError::new(code, e.to_string())
}

/// Writes the default replication config into `*out`.
///
/// `MMO_RESULT_NULL_ARGUMENT` when `out` is NULL. Thread-safe.
///
/// # Safety
/// `out` must be NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_replication_config_default(
    out: *mut mmo_replication_config,
) -> mmo_result {
    boundary::guard(|| {
        let out = Out::new(out, "out")?;
        let d = ReplicationConfig::default();
        let value = mmo_replication_config {
            tick_rate_hz: d.tick_rate.hz(),
            area_of_interest_radius_m: d.area_of_interest_radius_m,
            aoi_hysteresis_m: d.aoi_hysteresis_m,
            cell_size_m: d.cell_size_m,
            budget_bytes_per_s: d.budget_bytes_per_s,
            max_carry_ticks: d.max_carry_ticks,
        };
        // SAFETY: `out` is valid per the caller.
        unsafe { out.write(value) };
        Ok(())
    })
}

/// Creates a replicator with no entities and no clients from `*config` (copied). On success
/// `*out` receives a new handle owned by the caller: free it with `mmo_replicator_free`.
///
/// Errors: `MMO_RESULT_NULL_ARGUMENT`, `MMO_RESULT_INVALID_CONFIG` (the last error names the
/// field). Thread-safe (creates independent state).
///
/// # Safety
/// `config` must be NULL or readable; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_replicator_new(
    config: *const mmo_replication_config,
    out: *mut *mut mmo_replicator,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or readable.
        let c = unsafe { boundary::in_ref(config, "config") }?;
        let out = Out::new(out, "out")?;
        let config = ReplicationConfig {
            tick_rate: TickRate::new(c.tick_rate_hz).map_err(FfiError::config)?,
            area_of_interest_radius_m: c.area_of_interest_radius_m,
            aoi_hysteresis_m: c.aoi_hysteresis_m,
            cell_size_m: c.cell_size_m,
            budget_bytes_per_s: c.budget_bytes_per_s,
            max_carry_ticks: c.max_carry_ticks,
            ..ReplicationConfig::default()
        };
        let inner = Replicator::new(config).map_err(FfiError::config)?;
        // SAFETY: `out` is valid per the caller.
        unsafe { out.write(boundary::into_handle(mmo_replicator { inner })) };
        Ok(())
    })
}

/// Frees a replicator. NULL is a no-op. The handle must not be used afterwards.
///
/// # Safety
/// `replicator` must be NULL or a live handle, not used concurrently.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_replicator_free(replicator: *mut mmo_replicator) {
    boundary::guard_value((), || {
        // SAFETY: per the caller, NULL or a live handle from `mmo_replicator_new`.
        unsafe { boundary::free_handle(replicator) }
    });
}

/// Adds entity `entity_id` or updates its position (only X and Y matter) and `category` (a
/// `mmo_priority_category` value). Call whenever it moves.
///
/// Errors: `MMO_RESULT_NULL_ARGUMENT`, `MMO_RESULT_INVALID_ENUM` (`category`),
/// `MMO_RESULT_INVALID_ARGUMENT` (id 0 or non-finite position). One thread at a time.
///
/// # Safety
/// `replicator` must be NULL or a live handle; `position_m` NULL or readable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_replicator_update_entity(
    replicator: *mut mmo_replicator,
    entity_id: u32,
    position_m: *const mmo_vec3,
    category: u32,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or a live, unaliased handle.
        let r = unsafe { boundary::in_mut(replicator, "replicator") }?;
        // SAFETY: per the caller, NULL or readable.
        let position_m = unsafe { boundary::in_ref(position_m, "position_m") }?;
        let category = self::category(category)?;
        if entity_id == 0 {
            return Err(FfiError::invalid("entity_id", "must not be 0"));
        }
        let position_m = position_m.finite("position_m")?;
        r.inner
            .update_entity(EntityId(entity_id), position_m, category);
        Ok(())
    })
}

/// Removes entity `entity_id`; it appears in the `LEFT` list of every client that saw it at
/// their next plan.
///
/// Errors: `MMO_RESULT_NULL_ARGUMENT`, `MMO_RESULT_NOT_FOUND` (no such entity).
///
/// # Safety
/// `replicator` must be NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_replicator_remove_entity(
    replicator: *mut mmo_replicator,
    entity_id: u32,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or a live, unaliased handle.
        let r = unsafe { boundary::in_mut(replicator, "replicator") }?;
        if r.inner.remove_entity(EntityId(entity_id)) {
            Ok(())
        } else {
            Err(FfiError::new(
                mmo_result::NotFound,
                format!("entity {entity_id} is not in the replicator"),
            ))
        }
    })
}

/// Adds client `client_id` looking from `*viewer`, with an empty visible set and budget.
///
/// Errors: `MMO_RESULT_NULL_ARGUMENT`, `MMO_RESULT_INVALID_ENUM` (`viewer->kind`),
/// `MMO_RESULT_INVALID_ARGUMENT` (non-finite position), `MMO_RESULT_ALREADY_EXISTS`.
///
/// # Safety
/// `replicator` must be NULL or a live handle; `viewer` NULL or readable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_replicator_add_client(
    replicator: *mut mmo_replicator,
    client_id: u32,
    viewer: *const mmo_viewer,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or a live, unaliased handle.
        let r = unsafe { boundary::in_mut(replicator, "replicator") }?;
        // SAFETY: per the caller, NULL or readable.
        let viewer = unsafe { boundary::in_ref(viewer, "viewer") }?.to_core()?;
        r.inner
            .add_client(ClientId(client_id), viewer)
            .map_err(replication_error)
    })
}

/// Changes what client `client_id` looks from; takes effect at its next plan.
///
/// Errors: `MMO_RESULT_NULL_ARGUMENT`, `MMO_RESULT_INVALID_ENUM` (`viewer->kind`),
/// `MMO_RESULT_INVALID_ARGUMENT` (non-finite position), `MMO_RESULT_NOT_FOUND`.
///
/// # Safety
/// `replicator` must be NULL or a live handle; `viewer` NULL or readable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_replicator_set_viewer(
    replicator: *mut mmo_replicator,
    client_id: u32,
    viewer: *const mmo_viewer,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or a live, unaliased handle.
        let r = unsafe { boundary::in_mut(replicator, "replicator") }?;
        // SAFETY: per the caller, NULL or readable.
        let viewer = unsafe { boundary::in_ref(viewer, "viewer") }?.to_core()?;
        r.inner
            .set_viewer(ClientId(client_id), viewer)
            .map_err(replication_error)
    })
}

/// Forgets client `client_id`.
///
/// Errors: `MMO_RESULT_NULL_ARGUMENT`, `MMO_RESULT_NOT_FOUND`.
///
/// # Safety
/// `replicator` must be NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_replicator_remove_client(
    replicator: *mut mmo_replicator,
    client_id: u32,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or a live, unaliased handle.
        let r = unsafe { boundary::in_mut(replicator, "replicator") }?;
        if r.inner.remove_client(ClientId(client_id)) {
            Ok(())
        } else {
            Err(replication_error(ReplicationError::UnknownClient(
                ClientId(client_id),
            )))
        }
    })
}

/// Encoder mode: plans `tick` for client `client_id` (entered/left lists and ordered send
/// candidates) and writes the list sizes to `*out_info`. Ticks must not go backwards. Read
/// the lists with `mmo_replicator_plan_ids`, then call `mmo_replicator_commit` once.
///
/// Errors: `MMO_RESULT_NULL_ARGUMENT`, `MMO_RESULT_NOT_FOUND` (unknown client).
///
/// # Safety
/// `replicator` must be NULL or a live handle; `out_info` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_replicator_plan_tick(
    replicator: *mut mmo_replicator,
    tick: u32,
    client_id: u32,
    out_info: *mut mmo_plan_info,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or a live, unaliased handle.
        let r = unsafe { boundary::in_mut(replicator, "replicator") }?;
        let out_info = Out::new(out_info, "out_info")?;
        let plan = r
            .inner
            .plan_tick(Tick(tick), ClientId(client_id))
            .map_err(replication_error)?;
        // SAFETY: valid per the caller.
        unsafe { out_info.write(plan.into()) };
        Ok(())
    })
}

/// Encoder mode: reports what the planned tick's datagram carried: the `sent_count` ids at
/// `sent_ids` get their priority reset, the rest keep accumulating; `bytes_used` (the whole
/// datagram) is charged to the budget. One commit per plan.
///
/// Errors: `MMO_RESULT_NULL_ARGUMENT` (`sent_ids` may be NULL only when `sent_count` is 0),
/// `MMO_RESULT_NOT_FOUND` (unknown client), `MMO_RESULT_EMPTY` (no plan pending).
///
/// # Safety
/// `replicator` must be NULL or a live handle; `sent_ids` NULL or readable for `sent_count`
/// elements.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_replicator_commit(
    replicator: *mut mmo_replicator,
    client_id: u32,
    sent_ids: *const u32,
    sent_count: usize,
    bytes_used: u32,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or a live, unaliased handle.
        let r = unsafe { boundary::in_mut(replicator, "replicator") }?;
        // SAFETY: per the caller, NULL or readable for `sent_count` elements.
        let sent = unsafe { boundary::in_slice(sent_ids, sent_count, "sent_ids") }?;
        let sent: Vec<EntityId> = sent.iter().map(|&id| EntityId(id)).collect();
        r.inner
            .commit(ClientId(client_id), &sent, bytes_used)
            .map_err(replication_error)
    })
}

/// Estimate mode: plans `tick` for client `client_id`, selects candidates in send order
/// while `estimated_bytes_per_entity` (0 counts as 1) fits the tick's budget, commits them
/// as sent, and writes the list sizes to `*out_info`. Read the selection with
/// `mmo_replicator_plan_ids(..., MMO_PLAN_LIST_SELECTED, ...)`; do not commit.
///
/// Errors: `MMO_RESULT_NULL_ARGUMENT`, `MMO_RESULT_NOT_FOUND` (unknown client).
///
/// # Safety
/// `replicator` must be NULL or a live handle; `out_info` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_replicator_select_within_budget(
    replicator: *mut mmo_replicator,
    tick: u32,
    client_id: u32,
    estimated_bytes_per_entity: u32,
    out_info: *mut mmo_plan_info,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or a live, unaliased handle.
        let r = unsafe { boundary::in_mut(replicator, "replicator") }?;
        let out_info = Out::new(out_info, "out_info")?;
        let plan = r
            .inner
            .select_within_budget(Tick(tick), ClientId(client_id), estimated_bytes_per_entity)
            .map_err(replication_error)?;
        // SAFETY: valid per the caller.
        unsafe { out_info.write(plan.into()) };
        Ok(())
    })
}

/// Copies list `list` (a `mmo_plan_list` value) of client `client_id`'s most recent plan
/// into `out_ids` and its length to `*out_count`. Read-only: may be retried.
///
/// Errors: `MMO_RESULT_NULL_ARGUMENT` (`out_ids` may be NULL when `capacity` is 0),
/// `MMO_RESULT_INVALID_ENUM` (`list`), `MMO_RESULT_NOT_FOUND` (unknown client),
/// `MMO_RESULT_BUFFER_TOO_SMALL` (`capacity` below the list's length from `mmo_plan_info`;
/// nothing written).
///
/// # Safety
/// `replicator` must be NULL or a live handle; `out_ids` NULL or writable for `capacity`
/// elements; `out_count` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_replicator_plan_ids(
    replicator: *const mmo_replicator,
    client_id: u32,
    list: u32,
    out_ids: *mut u32,
    capacity: usize,
    out_count: *mut usize,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or a live handle.
        let r = unsafe { boundary::in_ref(replicator, "replicator") }?;
        let out_ids = OutSlice::new(out_ids, capacity, "out_ids")?;
        let out_count = Out::new(out_count, "out_count")?;
        let list = match list {
            l if l == mmo_plan_list::Candidates as u32 => mmo_plan_list::Candidates,
            l if l == mmo_plan_list::Entered as u32 => mmo_plan_list::Entered,
            l if l == mmo_plan_list::Left as u32 => mmo_plan_list::Left,
            l if l == mmo_plan_list::Selected as u32 => mmo_plan_list::Selected,
            other => return Err(FfiError::invalid_enum("list", other)),
        };
        let plan = r
            .inner
            .plan(ClientId(client_id))
            .map_err(replication_error)?;
        let ids = match list {
            mmo_plan_list::Candidates => &plan.candidates,
            mmo_plan_list::Entered => &plan.entered,
            mmo_plan_list::Left => &plan.left,
            mmo_plan_list::Selected => &plan.selected,
        };
        let ids: Vec<u32> = ids.iter().map(|id| id.0).collect();
        // SAFETY: writable for `capacity` elements per the caller; `write` checks the size.
        unsafe { out_ids.write(&ids)? };
        // SAFETY: valid per the caller.
        unsafe { out_count.write(ids.len()) };
        Ok(())
    })
}
