// The library side of UMMONetSubsystem, private to the plugin: the client session (one per
// Connect), the event router the components subscribe to (lives as long as the subsystem,
// so components may subscribe before connecting) and the entity manager's registry.
#pragma once

#include "CoreMinimal.h"
#include "Components/ActorComponent.h"
#include "Engine/GameInstance.h"
#include "Engine/World.h"
#include "Logic/EntityRegistry.h"
#include "Logic/EventRouter.h"
#include "MMONetSubsystem.h"
#include "MMORemoteCharacter.h"
#include "mmo.hpp"

#include <optional>
#include <string>

struct FMMONetState
{
	/** The session; empty before Connect and after the DISCONNECTED event. */
	std::optional<mmo::Client> Client;
	/** Routes every polled event; subscriptions outlive sessions. */
	mmo::ue::EventRouter Router;
	/** Remote entity id -> its actor. */
	mmo::ue::EntityRegistry<TWeakObjectPtr<AMMORemoteCharacter>> Entities;
	/** Between WELCOME and DISCONNECTED. */
	bool bWelcomed = false;
	/** DISCONNECTED was routed: Tick releases the client once the pump is done with it,
	    then broadcasts OnDisconnected (so a handler may Connect again at once). */
	bool bReleasePending = false;
	/** The pending DISCONNECTED's reason code and message. */
	int32 PendingReason = 0;
	FString PendingMessage;
	/** Where the session connected (a resumption goes there again: in a fleet, the address
	    of its gateways' load balancer). */
	std::string ServerHost;
	uint16_t ServerPort = 0;
	/** A resumption was started and has not ended (RESUMED or DISCONNECTED). */
	bool bResuming = false;
	/** The session cannot resume (a single server gives no resumption token). */
	bool bResumeUnavailable = false;
	/** Router subscriptions of the subsystem itself (removed in Deinitialize). */
	std::vector<mmo::ue::EventRouter::SubscriptionId> OwnSubscriptions;

	/** The client when a session exists, else null. */
	mmo::Client* GetClient() { return Client ? &*Client : nullptr; }
	const mmo::Client* GetClient() const { return Client ? &*Client : nullptr; }
};

/** The detail of the calling thread's last library error, for logs. */
inline FString MMOLastError(const mmo::Status& Status)
{
	const std::string Text = Status.message() + " (" + mmo::last_error() + ")";
	return FString(UTF8_TO_TCHAR(Text.c_str()));
}

/** The game instance's net subsystem seen from a component, or null (no world yet). */
inline UMMONetSubsystem* MMOFindSubsystem(const UActorComponent& Component)
{
	const UWorld* World = Component.GetWorld();
	const UGameInstance* GameInstance = World ? World->GetGameInstance() : nullptr;
	return GameInstance ? GameInstance->GetSubsystem<UMMONetSubsystem>() : nullptr;
}

/** The net state seen from a component, or null. */
inline FMMONetState* MMOFindNetState(const UActorComponent& Component)
{
	UMMONetSubsystem* Subsystem = MMOFindSubsystem(Component);
	return Subsystem ? Subsystem->GetNetState() : nullptr;
}

/** Stops a component's router subscription (no-op for 0 or without a state) and zeroes it. */
inline void MMOUnsubscribe(const UActorComponent& Component, uint64& Subscription)
{
	if (Subscription != 0)
	{
		if (FMMONetState* State = MMOFindNetState(Component))
		{
			State->Router.unsubscribe(Subscription);
		}
		Subscription = 0;
	}
}
