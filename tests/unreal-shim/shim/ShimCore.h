// Stand-in for the parts of Unreal Engine 5 that the MMOCore plugin uses, so that the plugin's
// real .cpp files compile and link without the engine (tests/integration/unreal_plugin.rs).
//
// It proves OUR code compiles and uses the mmo library correctly; it does not prove that it
// conforms to Unreal's API (only a real engine build does). Every type here has the subset of
// members the plugin calls, with Unreal's names and parameter types; behaviour is the
// simplest that lets a driver program exercise the plugin (objects are plain heap objects,
// the world owns spawned actors, nothing is garbage collected). Reflection macros expand to
// nothing, except GENERATED_BODY, which expands to what the stand-in `.generated.h` defines.
#ifndef MMO_UNREAL_SHIM_CORE_H
#define MMO_UNREAL_SHIM_CORE_H

#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

// ---- Basic types ------------------------------------------------------------------------

using int8 = int8_t;
using int16 = int16_t;
using int32 = int32_t;
using int64 = int64_t;
using uint8 = uint8_t;
using uint16 = uint16_t;
using uint32 = uint32_t;
using uint64 = uint64_t;
// Unreal's TCHAR is a wide character on Windows; the shim uses char (UTF-8) throughout, so
// the conversion macros are identities here.
using TCHAR = char;
using ANSICHAR = char;
#define TEXT(x) x
#define UTF8_TO_TCHAR(x) (x)
#define TCHAR_TO_UTF8(x) (x)

#ifndef WITH_DEV_AUTOMATION_TESTS
#define WITH_DEV_AUTOMATION_TESTS 0
#endif

// ---- Reflection macros (UHT input; nothing at compile time) ------------------------------

#define UCLASS(...)
#define USTRUCT(...)
#define UENUM(...)
#define UPROPERTY(...)
#define UFUNCTION(...)
#define UMETA(...)
class UClass {};
// As in Unreal, GENERATED_BODY() names a macro made of the header's CURRENT_FILE_ID and the
// line it is on; the header's `<Name>.generated.h` (written by the test from the header, as
// UHT would) defines it: `Super`, StaticClass() and, for classes, a closing `private:`.
#define SHIM_COMBINE_INNER(A, B, C, D) A##B##C##D
#define SHIM_COMBINE(A, B, C, D) SHIM_COMBINE_INNER(A, B, C, D)
#define GENERATED_BODY(...) SHIM_COMBINE(CURRENT_FILE_ID, _, __LINE__, _GENERATED_BODY)

// ---- Strings ----------------------------------------------------------------------------

class FString {
public:
    FString() = default;
    FString(const TCHAR *Text) : Data(Text ? Text : "") {}
    const TCHAR *operator*() const { return Data.c_str(); }
    bool IsEmpty() const { return Data.empty(); }
    int32 Len() const { return static_cast<int32>(Data.size()); }
    bool operator==(const FString &Other) const { return Data == Other.Data; }
    bool operator!=(const FString &Other) const { return Data != Other.Data; }
    FString operator+(const FString &Other) const { return FString((Data + Other.Data).c_str()); }
    FString TrimStartAndEnd() const {
        const auto Begin = Data.find_first_not_of(" \t\r\n");
        if (Begin == std::string::npos) {
            return FString();
        }
        const auto End = Data.find_last_not_of(" \t\r\n");
        return FString(Data.substr(Begin, End - Begin + 1).c_str());
    }
    static FString Printf(const TCHAR *Format, ...) __attribute__((format(printf, 1, 2))) {
        va_list Args;
        va_start(Args, Format);
        char Buffer[2048];
        std::vsnprintf(Buffer, sizeof Buffer, Format, Args);
        va_end(Args);
        return FString(Buffer);
    }

private:
    std::string Data;
};

class FName {
public:
    FName() = default;
    FName(const TCHAR *Text) : Data(Text) {}
    FString ToString() const { return Data; }

private:
    FString Data;
};

// ---- Math -------------------------------------------------------------------------------

struct FVector {
    double X = 0.0, Y = 0.0, Z = 0.0;
    FVector() = default;
    FVector(double InX, double InY, double InZ) : X(InX), Y(InY), Z(InZ) {}
    static const FVector ZeroVector;
    FVector operator+(const FVector &O) const { return FVector(X + O.X, Y + O.Y, Z + O.Z); }
    FVector operator-(const FVector &O) const { return FVector(X - O.X, Y - O.Y, Z - O.Z); }
};
inline const FVector FVector::ZeroVector{};

struct FRotator {
    double Pitch = 0.0, Yaw = 0.0, Roll = 0.0;
    FRotator() = default;
    FRotator(double InPitch, double InYaw, double InRoll) : Pitch(InPitch), Yaw(InYaw), Roll(InRoll) {}
    static const FRotator ZeroRotator;
};
inline const FRotator FRotator::ZeroRotator{};

struct FColor {
    uint8 R = 0, G = 0, B = 0, A = 255;
    static const FColor Cyan;
    static const FColor Red;
};
inline const FColor FColor::Cyan{0, 255, 255, 255};
inline const FColor FColor::Red{255, 0, 0, 255};

// ---- Containers -------------------------------------------------------------------------

template <class T>
class TArray {
public:
    int32 Num() const { return static_cast<int32>(Items.size()); }
    int32 Add(const T &Item) {
        Items.push_back(Item);
        return Num() - 1;
    }
    void Empty() { Items.clear(); }
    void SetNum(int32 Count) { Items.resize(static_cast<std::size_t>(Count)); }
    void RemoveAt(int32 Index) { Items.erase(Items.begin() + Index); }
    bool IsValidIndex(int32 Index) const { return Index >= 0 && Index < Num(); }
    T &operator[](int32 Index) { return Items[static_cast<std::size_t>(Index)]; }
    const T &operator[](int32 Index) const { return Items[static_cast<std::size_t>(Index)]; }
    T *GetData() { return Items.data(); }
    auto begin() { return Items.begin(); }
    auto end() { return Items.end(); }
    auto begin() const { return Items.begin(); }
    auto end() const { return Items.end(); }

private:
    std::vector<T> Items;
};

template <class K, class V>
class TMap {
public:
    void Add(const K &Key, const V &Value) { Items[Key] = Value; }
    const V *Find(const K &Key) const {
        auto It = Items.find(Key);
        return It == Items.end() ? nullptr : &It->second;
    }
    int32 Num() const { return static_cast<int32>(Items.size()); }

private:
    std::map<K, V> Items;
};

// ---- Logging ----------------------------------------------------------------------------

namespace ELogVerbosity {
enum Type : uint8 { NoLogging, Fatal, Error, Warning, Display, Log, Verbose, VeryVerbose, All };
}
struct FLogCategoryBase {
    const char *Name;
};
/// Lines logged so far per verbosity (the driver checks that start-up logged no error).
inline int GShimLogCounts[ELogVerbosity::All + 1] = {};
inline void ShimLog(const FLogCategoryBase &Category, ELogVerbosity::Type Verbosity,
                    const TCHAR *Format, ...) __attribute__((format(printf, 3, 4)));
inline void ShimLog(const FLogCategoryBase &Category, ELogVerbosity::Type Verbosity,
                    const TCHAR *Format, ...) {
    ++GShimLogCounts[Verbosity];
    std::fprintf(stderr, "%s: ", Category.Name);
    va_list Args;
    va_start(Args, Format);
    std::vfprintf(stderr, Format, Args);
    va_end(Args);
    std::fputc('\n', stderr);
}
#define DECLARE_LOG_CATEGORY_EXTERN(Name, DefaultVerbosity, CompileTimeVerbosity)          \
    extern FLogCategoryBase Name
#define DEFINE_LOG_CATEGORY(Name) FLogCategoryBase Name{#Name}
#define UE_LOG(Category, Verbosity, Format, ...)                                             \
    ShimLog(Category, ELogVerbosity::Verbosity, Format __VA_OPT__(, ) __VA_ARGS__)

// ---- Objects ----------------------------------------------------------------------------

class UWorld;

/// The argument of the hot-reload vtable constructor UHT declares for every UCLASS.
struct FVTableHelper {};

class UObject {
public:
    UObject() = default;
    explicit UObject(FVTableHelper &) {}
    virtual ~UObject() = default;
    virtual UWorld *GetWorld() const { return ShimOuter ? ShimOuter->GetWorld() : nullptr; }
    UObject *GetOuter() const { return ShimOuter; }

    template <class T>
    T *CreateDefaultSubobject(FName) {
        T *Made = new T();
        Made->ShimOuter = this;
        ShimSubobjects.emplace_back(Made);
        return Made;
    }

    /// The object that made this one (the shim's stand-in for Unreal's outer chain).
    UObject *ShimOuter = nullptr;

private:
    std::vector<std::unique_ptr<UObject>> ShimSubobjects;
};

template <class T>
using TObjectPtr = T *;

/// A pointer that does not keep its object alive. The shim cannot see destruction, so it
/// is only as good as the driver's care; Unreal's detects it.
template <class T>
class TWeakObjectPtr {
public:
    TWeakObjectPtr() = default;
    TWeakObjectPtr(T *InObject) : Object(InObject) {}
    T *Get() const { return Object; }
    bool IsValid() const { return Object != nullptr; }
    void Reset() { Object = nullptr; }
    T *operator->() const { return Object; }

private:
    T *Object = nullptr;
};

template <class T>
class TSubclassOf {
public:
    TSubclassOf() = default;
    TSubclassOf(UClass *InClass) : Class(InClass) {}
    UClass *Get() const { return Class; }
    explicit operator bool() const { return Class != nullptr; }
    bool operator<(const TSubclassOf &Other) const { return Class < Other.Class; }

private:
    UClass *Class = nullptr;
};

inline bool IsValid(const UObject *Object) { return Object != nullptr; }

/// The class default object of `T` (settings are read through it).
template <class T>
const T *GetDefault() {
    static T Default;
    return &Default;
}
template <class T>
T *GetMutableDefault() {
    return const_cast<T *>(GetDefault<T>());
}

// ---- Delegates --------------------------------------------------------------------------

/// A dynamic multicast delegate: Blueprint binds with AddDynamic; C++ here binds a
/// std::function with ShimAdd (the driver's way of observing broadcasts).
template <class... Args>
class TShimMulticastDelegate {
public:
    void Broadcast(Args... Values) const {
        for (const auto &Fn : Listeners) {
            Fn(Values...);
        }
    }
    void ShimAdd(std::function<void(Args...)> Fn) { Listeners.push_back(std::move(Fn)); }
    bool IsBound() const { return !Listeners.empty(); }

private:
    std::vector<std::function<void(Args...)>> Listeners;
};
#define DECLARE_DYNAMIC_MULTICAST_DELEGATE(Name) class Name : public TShimMulticastDelegate<> {}
#define DECLARE_DYNAMIC_MULTICAST_DELEGATE_OneParam(Name, T1, N1)                           \
    class Name : public TShimMulticastDelegate<T1> {}
#define DECLARE_DYNAMIC_MULTICAST_DELEGATE_TwoParams(Name, T1, N1, T2, N2)                  \
    class Name : public TShimMulticastDelegate<T1, T2> {}
#define DECLARE_DYNAMIC_MULTICAST_DELEGATE_ThreeParams(Name, T1, N1, T2, N2, T3, N3)        \
    class Name : public TShimMulticastDelegate<T1, T2, T3> {}
#define DECLARE_DYNAMIC_MULTICAST_DELEGATE_FourParams(Name, T1, N1, T2, N2, T3, N3, T4, N4) \
    class Name : public TShimMulticastDelegate<T1, T2, T3, T4> {}

#endif // MMO_UNREAL_SHIM_CORE_H
