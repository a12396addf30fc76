// UResourceSystemComponent: the pools re-read from the session on every RESOURCES_CHANGED.
#include "ResourceSystemComponent.h"

#include "MMOLog.h"
#include "MMONetState.h"

void UResourceSystemComponent::BeginPlay()
{
	Super::BeginPlay();
	if (FMMONetState* State = MMOFindNetState(*this))
	{
		Subscription = State->Router.subscribe(mmo::ue::EventChannel::Resources, [this](const mmo::ClientEvent&) { RefreshFromSession(); });
	}
}

void UResourceSystemComponent::EndPlay(const EEndPlayReason::Type EndPlayReason)
{
	MMOUnsubscribe(*this, Subscription);
	Super::EndPlay(EndPlayReason);
}

void UResourceSystemComponent::RefreshFromSession()
{
	FMMONetState* State = MMOFindNetState(*this);
	const mmo::Client* Client = State ? State->GetClient() : nullptr;
	if (Client == nullptr)
	{
		return;
	}
	const mmo::Result<mmo::Resources> Read = Client->resources();
	if (!Read.ok())
	{
		UE_LOG(LogMMO, Warning, TEXT("MMO resources unreadable: %s"), *MMOLastError(Read.status()));
		return;
	}
	Pools.Empty();
	for (const mmo_pool_value& Pool : Read->pools)
	{
		FMMOPoolValue Value;
		Value.PoolId = static_cast<int32>(Pool.pool_id);
		Value.Current = static_cast<int32>(Pool.current);
		Value.Max = static_cast<int32>(Pool.max);
		Pools.Add(Value);
	}
	bDead = Read->dead;
	RespawnInMs = static_cast<int32>(Read->respawn_in_ms);
	OnResourcesChanged.Broadcast();
}

bool UResourceSystemComponent::GetPool(int32 PoolId, FMMOPoolValue& OutPool) const
{
	for (const FMMOPoolValue& Pool : Pools)
	{
		if (Pool.PoolId == PoolId)
		{
			OutPool = Pool;
			return true;
		}
	}
	return false;
}

float UResourceSystemComponent::GetPoolFraction(int32 PoolId) const
{
	FMMOPoolValue Pool;
	if (!GetPool(PoolId, Pool) || Pool.Max <= 0)
	{
		return 0.0f;
	}
	return static_cast<float>(Pool.Current) / static_cast<float>(Pool.Max);
}
