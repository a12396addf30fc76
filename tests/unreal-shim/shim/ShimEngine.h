// Stand-in for the engine classes the MMOCore plugin uses (see ShimCore.h for what the shim
// proves and what it does not): game instance and its subsystems, the tickable interface,
// actors, components, characters, developer settings, GEngine's on-screen messages, console
// commands and the module interface.
#ifndef MMO_UNREAL_SHIM_ENGINE_H
#define MMO_UNREAL_SHIM_ENGINE_H

#include "ShimCore.h"

// ---- Game instance, subsystems, world ---------------------------------------------------

class FSubsystemCollectionBase {};

class UGameInstance;
class AActor;

class USubsystem : public UObject {
public:
    USubsystem() = default;
    explicit USubsystem(FVTableHelper &Helper) : UObject(Helper) {}
    virtual bool ShouldCreateSubsystem(UObject *) const { return true; }
    virtual void Initialize(FSubsystemCollectionBase &) {}
    virtual void Deinitialize() {}
};

class UGameInstanceSubsystem : public USubsystem {
public:
    UGameInstanceSubsystem() = default;
    explicit UGameInstanceSubsystem(FVTableHelper &Helper) : USubsystem(Helper) {}
    UGameInstance *GetGameInstance() const;
};

struct FActorSpawnParameters {
    enum class ESpawnActorCollisionHandlingMethod : uint8 { AlwaysSpawn };
    ESpawnActorCollisionHandlingMethod SpawnCollisionHandlingOverride{};
};
using ESpawnActorCollisionHandlingMethod = FActorSpawnParameters::ESpawnActorCollisionHandlingMethod;

class UWorld : public UObject {
public:
    explicit UWorld(UGameInstance *InGameInstance = nullptr) : GameInstance(InGameInstance) {}
    UWorld *GetWorld() const override { return const_cast<UWorld *>(this); }
    UGameInstance *GetGameInstance() const { return GameInstance; }

    /// Spawns a `T` (the shim ignores the class beyond requiring one) owned by the world.
    template <class T>
    T *SpawnActor(UClass *Class, const FVector &Location, const FRotator &Rotation,
                  const FActorSpawnParameters & = FActorSpawnParameters());
    /// Actors alive in the world (destroyed ones are removed).
    int32 ShimActorCount() const { return static_cast<int32>(Actors.size()); }
    void ShimDestroy(AActor *Actor);

private:
    UGameInstance *GameInstance;
    std::vector<std::unique_ptr<AActor>> Actors;
};

class UGameInstance : public UObject {
public:
    UWorld *GetWorld() const override { return World; }
    template <class T>
    T *GetSubsystem() const {
        for (const auto &Entry : Subsystems) {
            if (Entry.first == T::StaticClass()) {
                return static_cast<T *>(Entry.second.get());
            }
        }
        return nullptr;
    }
    /// Makes the subsystem `T` as the engine does when the game instance starts.
    template <class T>
    T *ShimAddSubsystem() {
        T *Made = new T();
        Made->ShimOuter = this;
        Subsystems.emplace_back(T::StaticClass(), std::unique_ptr<UObject>(Made));
        FSubsystemCollectionBase Collection;
        Made->Initialize(Collection);
        return Made;
    }
    /// Ends the subsystems, as the engine does when the game instance shuts down.
    void ShimShutdown() {
        for (auto &Entry : Subsystems) {
            static_cast<USubsystem *>(Entry.second.get())->Deinitialize();
        }
        Subsystems.clear();
    }
    UWorld *World = nullptr;

private:
    std::vector<std::pair<UClass *, std::unique_ptr<UObject>>> Subsystems;
};

inline UGameInstance *UGameInstanceSubsystem::GetGameInstance() const {
    return static_cast<UGameInstance *>(ShimOuter);
}

// ---- Tickable objects -------------------------------------------------------------------

struct TStatId {};
#define RETURN_QUICK_DECLARE_CYCLE_STAT(StatName, Group) return TStatId()
enum class ETickableTickType : uint8 { Conditional, Always, Never };

class FTickableGameObject {
public:
    virtual ~FTickableGameObject() = default;
    virtual void Tick(float DeltaTime) = 0;
    virtual TStatId GetStatId() const = 0;
    virtual bool IsTickable() const { return true; }
    virtual ETickableTickType GetTickableTickType() const { return ETickableTickType::Conditional; }
    virtual bool IsTickableWhenPaused() const { return false; }
};

// ---- Actors and components --------------------------------------------------------------

enum ELevelTick { LEVELTICK_TimeOnly, LEVELTICK_ViewportsOnly, LEVELTICK_All, LEVELTICK_PauseTick };
namespace EEndPlayReason {
enum Type : uint8 { Destroyed, LevelTransition, EndPlayInEditor, RemovedFromWorld, Quit };
}
struct FTickFunction {
    bool bCanEverTick = false;
    bool bStartWithTickEnabled = true;
};
struct FActorComponentTickFunction : FTickFunction {};
struct FActorTickFunction : FTickFunction {};

class UActorComponent : public UObject {
public:
    AActor *GetOwner() const;
    virtual void BeginPlay() {}
    virtual void EndPlay(const EEndPlayReason::Type) {}
    virtual void TickComponent(float, ELevelTick, FActorComponentTickFunction *) {}
    virtual void Activate(bool = false) { bActive = true; }
    virtual void Deactivate() { bActive = false; }
    bool IsActive() const { return bActive; }
    FActorComponentTickFunction PrimaryComponentTick;

private:
    bool bActive = true;
};

class AActor : public UObject {
public:
    UWorld *GetWorld() const override { return ShimWorld; }
    UGameInstance *GetGameInstance() const { return ShimWorld ? ShimWorld->GetGameInstance() : nullptr; }
    virtual void BeginPlay() {}
    virtual void EndPlay(const EEndPlayReason::Type) {}
    virtual void Tick(float) {}
    FVector GetActorLocation() const { return Location; }
    FRotator GetActorRotation() const { return Rotation; }
    bool SetActorLocationAndRotation(const FVector &NewLocation, const FRotator &NewRotation) {
        Location = NewLocation;
        Rotation = NewRotation;
        return true;
    }
    bool SetActorLocation(const FVector &NewLocation) {
        Location = NewLocation;
        return true;
    }
    bool Destroy() {
        if (ShimWorld) {
            ShimWorld->ShimDestroy(this);
        }
        return true;
    }
    FActorTickFunction PrimaryActorTick;

    // Shim: play and tick the actor and the components made in its constructor.
    void ShimBeginPlay() {
        BeginPlay();
        for (UActorComponent *C : ShimComponents) {
            C->BeginPlay();
        }
    }
    void ShimTick(float DeltaTime) {
        Tick(DeltaTime);
        for (UActorComponent *C : ShimComponents) {
            C->TickComponent(DeltaTime, LEVELTICK_All, &C->PrimaryComponentTick);
        }
    }
    void ShimEndPlay() {
        for (UActorComponent *C : ShimComponents) {
            C->EndPlay(EEndPlayReason::Destroyed);
        }
        EndPlay(EEndPlayReason::Destroyed);
    }

    template <class T>
    T *CreateDefaultSubobject(FName Name) {
        T *Made = UObject::CreateDefaultSubobject<T>(Name);
        ShimRegister(Made);
        return Made;
    }
    UWorld *ShimWorld = nullptr;

private:
    void ShimRegister(UActorComponent *Component) { ShimComponents.push_back(Component); }
    void ShimRegister(UObject *) {}
    FVector Location;
    FRotator Rotation;
    std::vector<UActorComponent *> ShimComponents;
};

inline AActor *UActorComponent::GetOwner() const { return static_cast<AActor *>(ShimOuter); }

template <class T>
T *UWorld::SpawnActor(UClass *Class, const FVector &Location, const FRotator &Rotation,
                      const FActorSpawnParameters &) {
    if (Class == nullptr) {
        return nullptr;
    }
    T *Made = new T();
    Made->ShimWorld = this;
    Made->SetActorLocationAndRotation(Location, Rotation);
    Actors.emplace_back(Made);
    Made->ShimBeginPlay();
    return Made;
}

inline void UWorld::ShimDestroy(AActor *Actor) {
    for (std::size_t I = 0; I < Actors.size(); ++I) {
        if (Actors[I].get() == Actor) {
            Actor->ShimEndPlay();
            Actors.erase(Actors.begin() + static_cast<std::ptrdiff_t>(I));
            return;
        }
    }
}

class USceneComponent : public UActorComponent {};
class UCapsuleComponent : public USceneComponent {
public:
    float GetScaledCapsuleHalfHeight() const { return HalfHeight; }
    float HalfHeight = 88.0f;
};
class UCharacterMovementComponent : public UActorComponent {};

class APawn : public AActor {};
class ACharacter : public APawn {
public:
    ACharacter() {
        Capsule = CreateDefaultSubobject<UCapsuleComponent>(TEXT("CollisionCylinder"));
        Movement = CreateDefaultSubobject<UCharacterMovementComponent>(TEXT("CharMoveComp"));
    }
    UCapsuleComponent *GetCapsuleComponent() const { return Capsule; }
    UCharacterMovementComponent *GetCharacterMovement() const { return Movement; }

private:
    UCapsuleComponent *Capsule;
    UCharacterMovementComponent *Movement;
};

// ---- Developer settings -----------------------------------------------------------------

class UDeveloperSettings : public UObject {
public:
    virtual FName GetContainerName() const { return TEXT("Project"); }
    virtual FName GetCategoryName() const { return TEXT("Game"); }
    virtual FName GetSectionName() const { return TEXT("Section"); }
};

// ---- GEngine ----------------------------------------------------------------------------

class UEngine : public UObject {
public:
    void AddOnScreenDebugMessage(uint64 Key, float TimeToDisplay, FColor DisplayColor,
                                 const FString &DebugMessage) {
        (void)Key;
        (void)TimeToDisplay;
        (void)DisplayColor;
        ++ShimScreenMessages;
        ShimLastScreenMessage = DebugMessage;
    }
    int32 ShimScreenMessages = 0;
    FString ShimLastScreenMessage;
};
inline UEngine *GEngine = nullptr;

// ---- Console commands -------------------------------------------------------------------

class FConsoleCommandDelegate {
public:
    static FConsoleCommandDelegate CreateStatic(void (*InFunction)()) {
        FConsoleCommandDelegate D;
        D.Function = InFunction;
        return D;
    }
    void Execute() const { Function(); }

private:
    void (*Function)() = nullptr;
};

/// Registers a console command for the program's lifetime; the shim keeps a name -> command
/// table so a driver can run one as the console would.
class FAutoConsoleCommand {
public:
    FAutoConsoleCommand(const TCHAR *Name, const TCHAR *Help, const FConsoleCommandDelegate &Command) {
        (void)Help;
        Table()[Name] = Command;
    }
    static bool ShimExecute(const std::string &Name) {
        auto It = Table().find(Name);
        if (It == Table().end()) {
            return false;
        }
        It->second.Execute();
        return true;
    }

private:
    static std::map<std::string, FConsoleCommandDelegate> &Table() {
        static std::map<std::string, FConsoleCommandDelegate> Commands;
        return Commands;
    }
};

// ---- Modules ----------------------------------------------------------------------------

class IModuleInterface {
public:
    virtual ~IModuleInterface() = default;
    virtual void StartupModule() {}
    virtual void ShutdownModule() {}
};
/// The shim's module factory: `ShimCreateModule_<Name>()` returns a new module object.
#define IMPLEMENT_MODULE(ModuleClass, ModuleName)                                            \
    IModuleInterface *ShimCreateModule_##ModuleName() { return new ModuleClass(); }

#endif // MMO_UNREAL_SHIM_ENGINE_H
