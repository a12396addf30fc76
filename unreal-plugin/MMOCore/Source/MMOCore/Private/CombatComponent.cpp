// UCombatComponent: ability requests over the mmo C ABI (not Unreal RPCs), their answers,
// cooldown queries and the combat events routed by the subsystem.
#include "CombatComponent.h"

#include "Logic/Units.h"
#include "MMOLog.h"
#include "MMONetState.h"

namespace
{
/** Ability ids are 16-bit on the wire. */
bool IsAbilityIdInRange(int32 AbilityID)
{
	return AbilityID >= 0 && AbilityID <= 65535;
}
}

void UCombatComponent::BeginPlay()
{
	Super::BeginPlay();
	FMMONetState* State = MMOFindNetState(*this);
	if (State == nullptr)
	{
		return;
	}
	CombatSubscription = State->Router.subscribe(mmo::ue::EventChannel::Combat, [this](const mmo::ClientEvent& Event) {
		const mmo_client_event& E = Event.event;
		FMMOCombatEvent Combat;
		Combat.SourceEntityId = static_cast<int32>(E.source_entity_id);
		Combat.TargetEntityId = static_cast<int32>(E.target_entity_id);
		Combat.AbilityId = E.has_ability != 0 ? static_cast<int32>(E.ability_id) : -1;
		Combat.Kind = static_cast<int32>(E.combat_kind);
		Combat.Amount = static_cast<int32>(E.amount);
		Combat.TargetHealth = static_cast<int32>(E.target_health);
		Combat.TargetHealthMax = static_cast<int32>(E.target_health_max);
		Combat.KnockbackCm = static_cast<float>(mmo::ue::distance_from_core(E.distance_m));
		Combat.ServerTick = static_cast<int32>(E.server_tick);
		if (RecentEvents.Num() >= MaxRecentEvents)
		{
			RecentEvents.RemoveAt(0);
		}
		RecentEvents.Add(Combat);
		OnCombatEvent.Broadcast(Combat);
		if (E.combat_kind == MMO_COMBAT_KIND_DAMAGE)
		{
			const UMMONetSubsystem* Subsystem = MMOFindSubsystem(*this);
			if (Subsystem != nullptr && Subsystem->LocalEntityId == Combat.TargetEntityId)
			{
				DamageTaken += Combat.Amount;
			}
			OnDamage.Broadcast(Combat);
		}
	});
	AbilitySubscription = State->Router.subscribe(mmo::ue::EventChannel::Ability, [this](const mmo::ClientEvent& Event) {
		OnAbilityResult.Broadcast(static_cast<int32>(Event.event.request), static_cast<int32>(Event.event.ability_id), Event.event.accepted != 0,
			FString(UTF8_TO_TCHAR(Event.refusal_kind().c_str())));
	});
}

void UCombatComponent::EndPlay(const EEndPlayReason::Type EndPlayReason)
{
	MMOUnsubscribe(*this, CombatSubscription);
	MMOUnsubscribe(*this, AbilitySubscription);
	Super::EndPlay(EndPlayReason);
}

int32 UCombatComponent::ServerExecuteAbility(int32 AbilityID, int32 TargetEntityId)
{
	FMMONetState* State = MMOFindNetState(*this);
	mmo::Client* Client = State ? State->GetClient() : nullptr;
	if (Client == nullptr || !IsAbilityIdInRange(AbilityID) || TargetEntityId < 0)
	{
		UE_LOG(LogMMO, Warning, TEXT("MMO ability %d on entity %d not sent: %s"), AbilityID, TargetEntityId,
			Client == nullptr ? TEXT("no session") : TEXT("ability id must be 0..65535 and the target 0 (self) or an entity id"));
		return 0;
	}
	const mmo_ability_target Target = TargetEntityId == 0 ? mmo::target_self() : mmo::target_entity(static_cast<uint32_t>(TargetEntityId));
	const mmo::Result<uint32_t> Request = Client->use_ability(static_cast<uint16_t>(AbilityID), Target);
	if (!Request.ok())
	{
		UE_LOG(LogMMO, Warning, TEXT("MMO ability %d not sent: %s"), AbilityID, *MMOLastError(Request.status()));
		return 0;
	}
	return static_cast<int32>(*Request);
}

int32 UCombatComponent::ServerExecuteAbilityAtLocation(int32 AbilityID, FVector TargetLocation)
{
	FMMONetState* State = MMOFindNetState(*this);
	mmo::Client* Client = State ? State->GetClient() : nullptr;
	if (Client == nullptr || !IsAbilityIdInRange(AbilityID))
	{
		UE_LOG(LogMMO, Warning, TEXT("MMO ability %d at a location not sent: %s"), AbilityID,
			Client == nullptr ? TEXT("no session") : TEXT("ability id must be 0..65535"));
		return 0;
	}
	const mmo_ability_target Target = mmo::target_ground_point(mmo::ue::location_to_core(TargetLocation));
	const mmo::Result<uint32_t> Request = Client->use_ability(static_cast<uint16_t>(AbilityID), Target);
	if (!Request.ok())
	{
		UE_LOG(LogMMO, Warning, TEXT("MMO ability %d not sent: %s"), AbilityID, *MMOLastError(Request.status()));
		return 0;
	}
	return static_cast<int32>(*Request);
}

bool UCombatComponent::GetCooldownRemaining(int32 AbilityID, float& OutGlobalSeconds, float& OutOwnSeconds) const
{
	FMMONetState* State = MMOFindNetState(*this);
	const mmo::Client* Client = State ? State->GetClient() : nullptr;
	if (Client == nullptr || !IsAbilityIdInRange(AbilityID))
	{
		return false;
	}
	const mmo::Result<mmo::Cooldown> Cooldown = Client->ability_cooldown(static_cast<uint16_t>(AbilityID));
	if (!Cooldown.ok())
	{
		return false;
	}
	OutGlobalSeconds = static_cast<float>(Cooldown->global_ms) / 1000.0f;
	OutOwnSeconds = static_cast<float>(Cooldown->own_ms) / 1000.0f;
	return true;
}

bool UCombatComponent::IsAbilityReady(int32 AbilityID) const
{
	float GlobalSeconds = 0.0f;
	float OwnSeconds = 0.0f;
	return GetCooldownRemaining(AbilityID, GlobalSeconds, OwnSeconds) && GlobalSeconds <= 0.0f && OwnSeconds <= 0.0f;
}
