// The game instance's connection to the MMO server: owns the library's client session,
// polls its events every frame and routes them (to its own delegates, to its entity manager
// that spawns and destroys AMMORemoteCharacter actors, and to the local character's
// components), and shows the netcode stats when `mmo.stats` is on.
//
// The session's library types stay private (FMMONetState, Private/MMONetState.h): game
// modules that include this header do not need mmo.h.
#pragma once

#include "CoreMinimal.h"
#include "Subsystems/GameInstanceSubsystem.h"
#include "Tickable.h"
#include <memory>
#include "MMONetSubsystem.generated.h"

class AMMORemoteCharacter;
struct FMMONetState;

DECLARE_DYNAMIC_MULTICAST_DELEGATE_OneParam(FMMOConnectedSignature, int32, LocalEntityId);
DECLARE_DYNAMIC_MULTICAST_DELEGATE_TwoParams(FMMODisconnectedSignature, int32, ReasonCode, const FString&, Message);
DECLARE_DYNAMIC_MULTICAST_DELEGATE_ThreeParams(FMMOChatReceivedSignature, int32, SenderEntityId, bool, bGlobal, const FString&, Text);
DECLARE_DYNAMIC_MULTICAST_DELEGATE_TwoParams(FMMORemoteEntitySignature, int32, EntityId, AMMORemoteCharacter*, Actor);

UCLASS()
class MMOCORE_API UMMONetSubsystem : public UGameInstanceSubsystem, public FTickableGameObject
{
	GENERATED_BODY()

public:
	UMMONetSubsystem();
	// Declared so UHT does not generate it inline in the .gen.cpp, where FMMONetState is
	// incomplete and the unique_ptr member could not be destroyed.
	UMMONetSubsystem(FVTableHelper& Helper);
	virtual ~UMMONetSubsystem();

	// USubsystem
	virtual void Initialize(FSubsystemCollectionBase& Collection) override;
	virtual void Deinitialize() override;

	// FTickableGameObject
	virtual void Tick(float DeltaTime) override;
	virtual TStatId GetStatId() const override;
	virtual bool IsTickable() const override;
	virtual ETickableTickType GetTickableTickType() const override { return ETickableTickType::Conditional; }

	/** Connects to the server of the project settings and logs in with LoginToken; false (and an error logged) when the settings are unusable. The outcome arrives as OnConnected or OnDisconnected. */
	UFUNCTION(BlueprintCallable, Category = "MMO|Net")
	bool Connect(const FString& LoginToken);

	/** Connects to Host:Port trusting the certificate with this SHA-256 (64 hex digits) and logs in. */
	UFUNCTION(BlueprintCallable, Category = "MMO|Net")
	bool ConnectTo(const FString& Host, int32 Port, const FString& CertificateFingerprint, const FString& LoginToken);

	/** Leaves cleanly; OnDisconnected (reason 1, client_quit) follows. */
	UFUNCTION(BlueprintCallable, Category = "MMO|Net")
	void Disconnect();

	/** Sends a chat line (zone channel, or global); false when not logged in or the text is refused. */
	UFUNCTION(BlueprintCallable, Category = "MMO|Net")
	bool SendChat(const FString& Text, bool bGlobal);

	/** Logged in (after OnConnected, before OnDisconnected). */
	UFUNCTION(BlueprintPure, Category = "MMO|Net")
	bool IsConnected() const;

	/** The netcode stats as the mmo.stats overlay shows them (empty without a session). */
	UFUNCTION(BlueprintPure, Category = "MMO|Net")
	FString GetStatsText() const;

	/** The remote actor of an entity in view, or null. */
	UFUNCTION(BlueprintPure, Category = "MMO|Net")
	AMMORemoteCharacter* FindRemoteCharacter(int32 EntityId) const;

	/** The controlled entity's id (0 before OnConnected). */
	UPROPERTY(BlueprintReadOnly, Category = "MMO|Net")
	int32 LocalEntityId = 0;

	/** Remote entities in view (actors spawned by the entity manager). */
	UPROPERTY(BlueprintReadOnly, Category = "MMO|Net")
	int32 RemoteEntityCount = 0;

	UPROPERTY(BlueprintAssignable, Category = "MMO|Net")
	FMMOConnectedSignature OnConnected;

	/** The server restarted the session from the character's last save (the zone process that ran it stopped): the new local entity id. Remote actors were despawned just before; the local character continues from its saved state. */
	UPROPERTY(BlueprintAssignable, Category = "MMO|Net")
	FMMOConnectedSignature OnRejoined;

	/** The session continues over a new connection after its connection fell silent for the project settings' ResumeAfterSilenceMs (in a fleet, its gateway died): same entity, same prediction; nothing was lost. */
	UPROPERTY(BlueprintAssignable, Category = "MMO|Net")
	FMMOConnectedSignature OnResumed;

	/** The session ended: the library's disconnect reason code (mmo_disconnect_reason) and message. */
	UPROPERTY(BlueprintAssignable, Category = "MMO|Net")
	FMMODisconnectedSignature OnDisconnected;

	UPROPERTY(BlueprintAssignable, Category = "MMO|Net")
	FMMOChatReceivedSignature OnChatReceived;

	UPROPERTY(BlueprintAssignable, Category = "MMO|Net")
	FMMORemoteEntitySignature OnRemoteEntitySpawned;

	UPROPERTY(BlueprintAssignable, Category = "MMO|Net")
	FMMORemoteEntitySignature OnRemoteEntityDespawned;

	/** C++ only: the library state (client, event router, entity registry) for the plugin's components. Never null between Initialize and Deinitialize. */
	FMMONetState* GetNetState() const { return State.get(); }

	/** C++ only: where to draw remote entity EntityId now (cm, Unreal yaw); false when it is not in view. */
	bool SampleRemoteEntity(int32 EntityId, FVector& OutBaseLocation, FRotator& OutRotation, bool& bOutExtrapolating, int32& OutHealthPercent) const;

private:
	void SubscribeOwnHandlers();
	/** Resumes the session when the server has been silent for the project settings' ResumeAfterSilenceMs (not while a resumption runs; never for a session that cannot resume; never when the setting is 0). */
	void ResumeIfSilent();
	void SpawnRemote(int32 EntityId, int32 Archetype, const FVector& BaseLocation);
	void DespawnRemote(int32 EntityId);
	void RespawnOrphans();
	void DespawnAll();
	void EndSession();

	/** Library state; created in Initialize, destroyed in Deinitialize. */
	std::unique_ptr<FMMONetState> State;
};
