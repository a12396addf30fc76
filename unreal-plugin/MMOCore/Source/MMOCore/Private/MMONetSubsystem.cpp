// UMMONetSubsystem: the session's life (connect, poll and route every frame, disconnect),
// the connection and chat delegates, the entity manager (remote actors per archetype) and
// the stats overlay. Event routing and entity bookkeeping are mmo::ue::EventRouter and
// mmo::ue::EntityRegistry (Private/Logic), tested without the engine.
#include "MMONetSubsystem.h"

#include "Engine/Engine.h"
#include "Engine/GameInstance.h"
#include "Engine/World.h"
#include "Logic/Diagnostics.h"
#include "Logic/Units.h"
#include "MMODeveloperSettings.h"
#include "MMOLog.h"
#include "MMONetState.h"
#include "MMORemoteCharacter.h"
#include "MMOStatsOverlay.h"

namespace
{
/** On-screen message key of the stats overlay (one line set, replaced every frame). */
constexpr uint64 StatsOverlayKey = 0x4D4D4F5354415453ull; // "MMOSTATS"

FString ToFString(const std::string& Utf8)
{
	return FString(UTF8_TO_TCHAR(Utf8.c_str()));
}
}

UMMONetSubsystem::UMMONetSubsystem() = default;
UMMONetSubsystem::UMMONetSubsystem(FVTableHelper& Helper) : Super(Helper) {}
UMMONetSubsystem::~UMMONetSubsystem() = default;

void UMMONetSubsystem::Initialize(FSubsystemCollectionBase& Collection)
{
	Super::Initialize(Collection);
	State = std::make_unique<FMMONetState>();
	SubscribeOwnHandlers();
}

void UMMONetSubsystem::Deinitialize()
{
	if (State)
	{
		if (mmo::Client* Client = State->GetClient())
		{
			// The destructor tells the server (waiting at most ~40 ms); no event follows.
			(void)Client->disconnect();
		}
		EndSession();
		for (const mmo::ue::EventRouter::SubscriptionId Id : State->OwnSubscriptions)
		{
			State->Router.unsubscribe(Id);
		}
		State.reset();
	}
	Super::Deinitialize();
}

bool UMMONetSubsystem::IsTickable() const
{
	return State && State->Client.has_value();
}

TStatId UMMONetSubsystem::GetStatId() const
{
	RETURN_QUICK_DECLARE_CYCLE_STAT(UMMONetSubsystem, STATGROUP_Tickables);
}

bool UMMONetSubsystem::Connect(const FString& LoginToken)
{
	const UMMODeveloperSettings* Settings = GetDefault<UMMODeveloperSettings>();
	return ConnectTo(Settings->ServerAddress, Settings->ServerPort, Settings->CertificateFingerprint, LoginToken);
}

bool UMMONetSubsystem::ConnectTo(const FString& Host, int32 Port, const FString& CertificateFingerprint, const FString& LoginToken)
{
	if (!State)
	{
		UE_LOG(LogMMO, Error, TEXT("MMO connect: the subsystem is not initialized"));
		return false;
	}
	const std::string AbiError = mmo::ue::abi_check();
	if (!AbiError.empty())
	{
		UE_LOG(LogMMO, Error, TEXT("MMO connect refused: %s"), UTF8_TO_TCHAR(AbiError.c_str()));
		return false;
	}
	if (State->Client)
	{
		UE_LOG(LogMMO, Error, TEXT("MMO connect: a session is already running; Disconnect and wait for OnDisconnected first"));
		return false;
	}
	if (Host.IsEmpty() || Port < 1 || Port > 65535)
	{
		UE_LOG(LogMMO, Error, TEXT("MMO connect: bad server address '%s' port %d (want a host and a port in 1..65535)"), *Host, Port);
		return false;
	}

	const UMMODeveloperSettings* Settings = GetDefault<UMMODeveloperSettings>();
	const std::string FingerprintUtf8 = TCHAR_TO_UTF8(*CertificateFingerprint.TrimStartAndEnd());
	mmo_client_config Config = mmo::default_client_config();
	Config.server_fingerprint_hex = FingerprintUtf8.c_str();
	if (Settings->InterpolationDelayMs >= 0)
	{
		const uint64_t MinDelayUs = static_cast<uint64_t>(Settings->InterpolationDelayMs) * 1000u;
		Config.interpolation.min_delay_us = MinDelayUs;
		if (Config.interpolation.max_delay_us < MinDelayUs)
		{
			Config.interpolation.max_delay_us = MinDelayUs;
		}
	}
	mmo::Result<mmo::Client> Made = mmo::Client::create(Config);
	if (!Made.ok())
	{
		UE_LOG(LogMMO, Error, TEXT("MMO connect: bad client settings: %s"), *MMOLastError(Made.status()));
		return false;
	}
	const std::string HostUtf8 = TCHAR_TO_UTF8(*Host);
	const std::string TokenUtf8 = TCHAR_TO_UTF8(*LoginToken);
	const mmo::Status Started = Made->connect(HostUtf8.c_str(), static_cast<uint16_t>(Port), TokenUtf8.c_str());
	if (!Started.ok())
	{
		UE_LOG(LogMMO, Error, TEXT("MMO connect to %s:%d failed: %s"), *Host, Port, *MMOLastError(Started));
		return false;
	}
	State->Client.emplace(std::move(Made).value());
	State->ServerHost = HostUtf8;
	State->ServerPort = static_cast<uint16_t>(Port);
	State->bResuming = false;
	State->bResumeUnavailable = false;
	UE_LOG(LogMMO, Log, TEXT("MMO connecting to %s:%d"), *Host, Port);
	return true;
}

void UMMONetSubsystem::Disconnect()
{
	mmo::Client* Client = State ? State->GetClient() : nullptr;
	if (Client == nullptr)
	{
		return;
	}
	const mmo::Status Left = Client->disconnect();
	if (!Left.ok())
	{
		UE_LOG(LogMMO, Warning, TEXT("MMO disconnect: %s"), *MMOLastError(Left));
	}
}

bool UMMONetSubsystem::SendChat(const FString& Text, bool bGlobal)
{
	mmo::Client* Client = State ? State->GetClient() : nullptr;
	if (Client == nullptr || !State->bWelcomed)
	{
		UE_LOG(LogMMO, Warning, TEXT("MMO chat: not logged in"));
		return false;
	}
	const std::string Utf8 = TCHAR_TO_UTF8(*Text);
	const mmo::Status Sent = Client->send_chat(bGlobal ? MMO_CHAT_CHANNEL_GLOBAL : MMO_CHAT_CHANNEL_ZONE, Utf8.c_str());
	if (!Sent.ok())
	{
		UE_LOG(LogMMO, Warning, TEXT("MMO chat refused: %s"), *MMOLastError(Sent));
		return false;
	}
	return true;
}

bool UMMONetSubsystem::IsConnected() const
{
	return State && State->bWelcomed;
}

FString UMMONetSubsystem::GetStatsText() const
{
	const mmo::Client* Client = State ? State->GetClient() : nullptr;
	if (Client == nullptr)
	{
		return FString();
	}
	const mmo::Result<mmo_connection_stats> Stats = Client->stats();
	return Stats.ok() ? ToFString(mmo::ue::format_stats(*Stats)) : FString();
}

AMMORemoteCharacter* UMMONetSubsystem::FindRemoteCharacter(int32 EntityId) const
{
	if (!State || EntityId <= 0)
	{
		return nullptr;
	}
	const auto* Entry = State->Entities.find(static_cast<uint32_t>(EntityId));
	return Entry ? Entry->handle.Get() : nullptr;
}

bool UMMONetSubsystem::SampleRemoteEntity(int32 EntityId, FVector& OutBaseLocation, FRotator& OutRotation, bool& bOutExtrapolating, int32& OutHealthPercent) const
{
	mmo::Client* Client = State ? State->GetClient() : nullptr;
	if (Client == nullptr || EntityId <= 0)
	{
		return false;
	}
	const mmo::Result<mmo_interp_output> Sample = Client->sample_entity(static_cast<uint32_t>(EntityId));
	if (!Sample.ok())
	{
		return false;
	}
	OutBaseLocation = mmo::ue::location_from_core<FVector>(Sample->position_m);
	OutRotation = FRotator(0.0, mmo::ue::core_rad_to_yaw_deg(Sample->yaw_rad), 0.0);
	bOutExtrapolating = Sample->extrapolating != 0;
	const mmo::Result<uint8_t> Health = Client->entity_health(static_cast<uint32_t>(EntityId));
	if (Health.ok())
	{
		OutHealthPercent = static_cast<int32>(*Health);
	}
	return true;
}

void UMMONetSubsystem::Tick(float DeltaTime)
{
	(void)DeltaTime;
	mmo::Client* Client = State ? State->GetClient() : nullptr;
	if (Client == nullptr)
	{
		return;
	}
	const mmo::Result<std::size_t> Pumped = State->Router.pump(*Client);
	if (!Pumped.ok())
	{
		UE_LOG(LogMMO, Error, TEXT("MMO poll failed: %s"), *MMOLastError(Pumped.status()));
	}
	RespawnOrphans();
	ResumeIfSilent();
	if (GEngine != nullptr && MMOIsStatsOverlayEnabled())
	{
		GEngine->AddOnScreenDebugMessage(StatsOverlayKey, 0.0f, FColor::Cyan, GetStatsText());
	}
	if (State->bReleasePending)
	{
		const int32 Reason = State->PendingReason;
		const FString Message = State->PendingMessage;
		EndSession();
		// After the release: a handler that connects again finds no session running.
		OnDisconnected.Broadcast(Reason, Message);
	}
}

void UMMONetSubsystem::ResumeIfSilent()
{
	mmo::Client* Client = State->GetClient();
	if (Client == nullptr || !State->bWelcomed || State->bResuming || State->bResumeUnavailable || State->bReleasePending)
	{
		return;
	}
	const int32 SettingMs = GetDefault<UMMODeveloperSettings>()->ResumeAfterSilenceMs;
	if (SettingMs <= 0)
	{
		return;
	}
	const uint64_t ThresholdMs = static_cast<uint64_t>(SettingMs);
	const mmo::Result<uint64_t> SilentMs = Client->server_silent_ms();
	if (!SilentMs.ok() || *SilentMs < ThresholdMs)
	{
		return;
	}
	const mmo::Status Started = Client->resume(State->ServerHost.c_str(), State->ServerPort);
	if (!Started.ok())
	{
		// A single server gives no resumption token: its session ends by its idle timeout.
		State->bResumeUnavailable = true;
		UE_LOG(LogMMO, Log, TEXT("MMO server silent for %llu ms; the session cannot resume: %s"), static_cast<unsigned long long>(*SilentMs), *MMOLastError(Started));
		return;
	}
	State->bResuming = true;
	UE_LOG(LogMMO, Warning, TEXT("MMO server silent for %llu ms: resuming the session"), static_cast<unsigned long long>(*SilentMs));
}

void UMMONetSubsystem::SubscribeOwnHandlers()
{
	using mmo::ue::EventChannel;
	State->OwnSubscriptions.push_back(State->Router.subscribe(EventChannel::Connection, [this](const mmo::ClientEvent& Event) {
		if (Event.kind() == MMO_CLIENT_EVENT_KIND_WELCOME)
		{
			State->bWelcomed = true;
			LocalEntityId = static_cast<int32>(Event.event.entity_id);
			UE_LOG(LogMMO, Log, TEXT("MMO logged in as entity %d"), LocalEntityId);
			OnConnected.Broadcast(LocalEntityId);
			return;
		}
		if (Event.kind() == MMO_CLIENT_EVENT_KIND_REJOINED)
		{
			LocalEntityId = static_cast<int32>(Event.event.entity_id);
			UE_LOG(LogMMO, Warning, TEXT("MMO session restarted from the last save as entity %d"), LocalEntityId);
			OnRejoined.Broadcast(LocalEntityId);
			return;
		}
		if (Event.kind() == MMO_CLIENT_EVENT_KIND_RESUMED)
		{
			State->bResuming = false;
			UE_LOG(LogMMO, Log, TEXT("MMO session resumed over a new connection"));
			OnResumed.Broadcast(LocalEntityId);
			return;
		}
		const int32 Reason = static_cast<int32>(Event.event.disconnect_reason);
		const FString Message = ToFString(Event.text);
		UE_LOG(LogMMO, Log, TEXT("MMO disconnected: %s (%d): %s"), UTF8_TO_TCHAR(mmo::disconnect_reason_name(Event.event.disconnect_reason)), Reason, *Message);
		// The router is inside pump(), which polls this client once more: Tick releases it
		// after the pump and then broadcasts OnDisconnected.
		State->bReleasePending = true;
		State->PendingReason = Reason;
		State->PendingMessage = Message;
		DespawnAll();
		State->bWelcomed = false;
		LocalEntityId = 0;
	}));
	State->OwnSubscriptions.push_back(State->Router.subscribe(EventChannel::Entity, [this](const mmo::ClientEvent& Event) {
		const int32 EntityId = static_cast<int32>(Event.event.entity_id);
		if (Event.kind() == MMO_CLIENT_EVENT_KIND_ENTITY_SPAWNED)
		{
			SpawnRemote(EntityId, static_cast<int32>(Event.event.archetype), mmo::ue::location_from_core<FVector>(Event.event.position_m));
		}
		else
		{
			DespawnRemote(EntityId);
		}
	}));
	State->OwnSubscriptions.push_back(State->Router.subscribe(EventChannel::Chat, [this](const mmo::ClientEvent& Event) {
		OnChatReceived.Broadcast(static_cast<int32>(Event.event.entity_id), Event.event.chat_channel == MMO_CHAT_CHANNEL_GLOBAL, ToFString(Event.text));
	}));
}

void UMMONetSubsystem::SpawnRemote(int32 EntityId, int32 Archetype, const FVector& BaseLocation)
{
	if (const auto* Known = State->Entities.find(static_cast<uint32_t>(EntityId)))
	{
		if (Known->handle.IsValid())
		{
			UE_LOG(LogMMO, Warning, TEXT("MMO entity %d spawned twice; keeping the first actor"), EntityId);
			return;
		}
		// Its actor is gone (a level change destroyed it): spawn a new one.
		State->Entities.remove(static_cast<uint32_t>(EntityId));
	}
	UWorld* World = GetGameInstance() ? GetGameInstance()->GetWorld() : nullptr;
	if (World == nullptr)
	{
		// Known without an actor; a later spawn for it (or a level's) finds an empty handle.
		UE_LOG(LogMMO, Warning, TEXT("MMO entity %d: no world to spawn it in"), EntityId);
		State->Entities.add(static_cast<uint32_t>(EntityId), static_cast<uint16_t>(Archetype), TWeakObjectPtr<AMMORemoteCharacter>());
		RemoteEntityCount = static_cast<int32>(State->Entities.size());
		return;
	}
	const UMMODeveloperSettings* Settings = GetDefault<UMMODeveloperSettings>();
	TSubclassOf<AMMORemoteCharacter> Class = Settings->DefaultRemoteClass;
	if (const TSubclassOf<AMMORemoteCharacter>* Mapped = Settings->ArchetypeClasses.Find(Archetype))
	{
		Class = *Mapped;
	}
	if (!Class)
	{
		Class = AMMORemoteCharacter::StaticClass();
	}
	FActorSpawnParameters Params;
	Params.SpawnCollisionHandlingOverride = ESpawnActorCollisionHandlingMethod::AlwaysSpawn;
	AMMORemoteCharacter* Actor = World->SpawnActor<AMMORemoteCharacter>(Class.Get(), BaseLocation, FRotator::ZeroRotator, Params);
	if (Actor == nullptr)
	{
		UE_LOG(LogMMO, Warning, TEXT("MMO entity %d (archetype %d): spawning its actor failed"), EntityId, Archetype);
		return;
	}
	Actor->InitRemote(EntityId, Archetype);
	State->Entities.add(static_cast<uint32_t>(EntityId), static_cast<uint16_t>(Archetype), TWeakObjectPtr<AMMORemoteCharacter>(Actor));
	RemoteEntityCount = static_cast<int32>(State->Entities.size());
	OnRemoteEntitySpawned.Broadcast(EntityId, Actor);
}

void UMMONetSubsystem::RespawnOrphans()
{
	// Entities in view whose actor is gone (a level change destroyed it, or no world existed
	// when they entered): spawn them again where they are drawn now. The library reports an
	// entity's spawn only once per entering the view, so nobody else would.
	std::vector<std::pair<int32, int32>> Orphans;
	State->Entities.for_each([&Orphans](uint32_t Id, const auto& Entry) {
		if (!Entry.handle.IsValid())
		{
			Orphans.emplace_back(static_cast<int32>(Id), static_cast<int32>(Entry.archetype));
		}
	});
	if (Orphans.empty() || GetGameInstance() == nullptr || GetGameInstance()->GetWorld() == nullptr)
	{
		return;
	}
	for (const auto& [EntityId, Archetype] : Orphans)
	{
		FVector Location;
		FRotator Rotation;
		bool bExtrapolating = false;
		int32 HealthPercent = 0;
		if (SampleRemoteEntity(EntityId, Location, Rotation, bExtrapolating, HealthPercent))
		{
			SpawnRemote(EntityId, Archetype, Location);
		}
	}
}

void UMMONetSubsystem::DespawnRemote(int32 EntityId)
{
	auto Removed = State->Entities.remove(static_cast<uint32_t>(EntityId));
	RemoteEntityCount = static_cast<int32>(State->Entities.size());
	if (!Removed)
	{
		return;
	}
	AMMORemoteCharacter* Actor = Removed->handle.Get();
	OnRemoteEntityDespawned.Broadcast(EntityId, Actor);
	if (IsValid(Actor))
	{
		Actor->Destroy();
	}
}

void UMMONetSubsystem::DespawnAll()
{
	for (auto& Entry : State->Entities.take_all())
	{
		AMMORemoteCharacter* Actor = Entry.second.handle.Get();
		OnRemoteEntityDespawned.Broadcast(static_cast<int32>(Entry.first), Actor);
		if (IsValid(Actor))
		{
			Actor->Destroy();
		}
	}
	RemoteEntityCount = 0;
}

void UMMONetSubsystem::EndSession()
{
	DespawnAll();
	State->bWelcomed = false;
	State->bReleasePending = false;
	LocalEntityId = 0;
	// Never called from inside a dispatch (the DISCONNECTED handler defers it to Tick).
	State->Client.reset();
}
