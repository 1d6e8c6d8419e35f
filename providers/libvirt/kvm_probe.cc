#include "providers/libvirt/kvm_probe.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "common/base/file.h"

extern char** environ;

namespace pp::providers::libvirt {
namespace {

using std::chrono::milliseconds;

// The probe ROM. QEMU maps a 64 KiB -bios file at 0xF0000-0xFFFFF (and at 4 GiB - 64 KiB); the CPU
// starts at the reset vector, ROM offset 0xFFF0, with CS base 0xF0000 in practice (architecturally
// 0xFFFF0000, the top alias; the far jump there reloads CS = 0xF000 either way). The code sits at
// ROM offset 0, i.e. physical 0xF0000 = F000:0000, and uses RAM only for the page tables at
// 0x1000-0x3fff. Progress marks go to isa-debugcon (port 0xe9): 'P' in protected mode, 'L' in long
// mode, so a timeout can say how far the guest got.
//
// The GDT lives in the ROM with every accessed bit preset (type 0x9b/0x93, as SeaBIOS does): a
// clear bit makes the CPU write the descriptor back when loading it, a write to read-only memory
// that a nested KVM never completed (the far jump into protected mode spun forever).
//
// Source (GNU as; no relocations, `as` resolves every address). To check the bytes below, assemble
// the listing; probe.rom then equals BuildProbeRom() byte for byte:
//   sed -n '/^\/\/ BEGIN probe.S$/,/^\/\/ END/p' kvm_probe.cc | sed '1d;$d;s|^// \?||' >probe.S
//   as --64 -o probe.o probe.S && objcopy -O binary probe.o probe.rom
//
// BEGIN probe.S
//         .set ROM, 0xF0000               # ROM offset N is physical 0xF0000 + N
//         .set LOOPS, 1 << 25
//         .text
// rom:
//         .code16
// start16:                                # entered from the reset vector as F000:0000
//         cli
//         cld
//         lgdtl   %cs:(gdtr - rom)        # operand-size prefix: 32-bit GDT base
//         movl    %cr0, %eax
//         orl     $1, %eax                # CR0.PE
//         movl    %eax, %cr0
//         ljmpl   $0x08, $(ROM + start32 - rom)
//
//         .code32
// start32:
//         movw    $0x10, %ax
//         movw    %ax, %ds
//         movw    %ax, %es
//         movw    %ax, %ss
//         movb    $'P', %al
//         outb    %al, $0xe9              # progress to isa-debugcon: protected mode
//         movl    $0x1000, %edi           # zero PML4, PDPT, PD at 0x1000-0x3fff
//         xorl    %eax, %eax
//         movl    $(0x3000 / 4), %ecx
//         rep stosl
//         movl    $0x2003, 0x1000         # PML4[0] -> PDPT at 0x2000, present+writable
//         movl    $0x3003, 0x2000         # PDPT[0] -> PD at 0x3000
//         movl    $0x83, 0x3000           # PD[0] -> 0-2 MiB, present+writable+2 MiB page
//         movl    %cr4, %eax
//         orl     $0x20, %eax             # CR4.PAE
//         movl    %eax, %cr4
//         movl    $0x1000, %eax
//         movl    %eax, %cr3
//         movl    $0xC0000080, %ecx       # IA32_EFER
//         rdmsr
//         orl     $0x100, %eax            # EFER.LME
//         wrmsr
//         movl    %cr0, %eax
//         orl     $0x80000000, %eax       # CR0.PG: long mode is active (compatibility mode)
//         movl    %eax, %cr0
//         ljmp    $0x18, $(ROM + start64 - rom)
//
//         .code64
// start64:
//         movb    $'L', %al
//         outb    %al, $0xe9              # progress: long mode
//         movl    $LOOPS, %ecx            # 2^25 iterations: ms with hardware virtualization or
// 1:      decl    %ecx                    # TCG, a minute when every instruction is emulated
//         jnz     1b
//         movb    $0x31, %al
//         outb    %al, $0xf4              # isa-debug-exit: QEMU exits with (0x31 << 1) | 1 = 99
// 2:      hlt
//         jmp     2b
//
//         .p2align 3, 0
// gdt:                                    # accessed bits preset: the CPU never writes to the ROM
//         .quad   0                       # 0x00 null
//         .quad   0x00cf9b000000ffff      # 0x08 32-bit code, base 0, limit 4 GiB
//         .quad   0x00cf93000000ffff      # 0x10 data, base 0, limit 4 GiB
//         .quad   0x00af9b000000ffff      # 0x18 64-bit code (L=1, D=0)
// gdtr:
//         .word   gdtr - gdt - 1
//         .long   ROM + gdt - rom
//
//         .org    0xFFF0                  # reset vector, physical 0xFFFF0
//         .code16
//         ljmpw   $0xF000, $(start16 - rom)
//         .org    0x10000
// END probe.S

// ROM offsets 0x0000-0x00c5 (annotated with offset and instruction); the rest is zero except the
// reset vector.
constexpr std::array<std::uint8_t, 0xc6> kProbeCode = {
    // start16:
    0xfa,                                            // 0000 cli
    0xfc,                                            // 0001 cld
    0x2e, 0x66, 0x0f, 0x01, 0x16, 0xc0, 0x00,        // 0002 lgdtl %cs:(gdtr - rom)
    0x0f, 0x20, 0xc0,                                // 0009 movl %cr0, %eax
    0x66, 0x83, 0xc8, 0x01,                          // 000c orl $1, %eax
    0x0f, 0x22, 0xc0,                                // 0010 movl %eax, %cr0
    0x66, 0xea, 0x1b, 0x00, 0x0f, 0x00, 0x08, 0x00,  // 0013 ljmpl $0x08, $0xf001b
    // start32:
    0x66, 0xb8, 0x10, 0x00,                                      // 001b movw $0x10, %ax
    0x8e, 0xd8,                                                  // 001f movw %ax, %ds
    0x8e, 0xc0,                                                  // 0021 movw %ax, %es
    0x8e, 0xd0,                                                  // 0023 movw %ax, %ss
    0xb0, 0x50,                                                  // 0025 movb $'P', %al
    0xe6, 0xe9,                                                  // 0027 outb %al, $0xe9
    0xbf, 0x00, 0x10, 0x00, 0x00,                                // 0029 movl $0x1000, %edi
    0x31, 0xc0,                                                  // 002e xorl %eax, %eax
    0xb9, 0x00, 0x0c, 0x00, 0x00,                                // 0030 movl $(0x3000 / 4), %ecx
    0xf3, 0xab,                                                  // 0035 rep stosl
    0xc7, 0x05, 0x00, 0x10, 0x00, 0x00, 0x03, 0x20, 0x00, 0x00,  // 0037 movl $0x2003, 0x1000
    0xc7, 0x05, 0x00, 0x20, 0x00, 0x00, 0x03, 0x30, 0x00, 0x00,  // 0041 movl $0x3003, 0x2000
    0xc7, 0x05, 0x00, 0x30, 0x00, 0x00, 0x83, 0x00, 0x00, 0x00,  // 004b movl $0x83, 0x3000
    0x0f, 0x20, 0xe0,                                            // 0055 movl %cr4, %eax
    0x83, 0xc8, 0x20,                                            // 0058 orl $0x20, %eax
    0x0f, 0x22, 0xe0,                                            // 005b movl %eax, %cr4
    0xb8, 0x00, 0x10, 0x00, 0x00,                                // 005e movl $0x1000, %eax
    0x0f, 0x22, 0xd8,                                            // 0063 movl %eax, %cr3
    0xb9, 0x80, 0x00, 0x00, 0xc0,                                // 0066 movl $0xC0000080, %ecx
    0x0f, 0x32,                                                  // 006b rdmsr
    0x0d, 0x00, 0x01, 0x00, 0x00,                                // 006d orl $0x100, %eax
    0x0f, 0x30,                                                  // 0072 wrmsr
    0x0f, 0x20, 0xc0,                                            // 0074 movl %cr0, %eax
    0x0d, 0x00, 0x00, 0x00, 0x80,                                // 0077 orl $0x80000000, %eax
    0x0f, 0x22, 0xc0,                                            // 007c movl %eax, %cr0
    0xea, 0x86, 0x00, 0x0f, 0x00, 0x18, 0x00,                    // 007f ljmp $0x18, $0xf0086
    // start64:
    0xb0, 0x4c,                          // 0086 movb $'L', %al
    0xe6, 0xe9,                          // 0088 outb %al, $0xe9
    0xb9, 0x00, 0x00, 0x00, 0x02,        // 008a movl $LOOPS, %ecx
    0xff, 0xc9,                          // 008f 1: decl %ecx
    0x75, 0xfc,                          // 0091 jnz 1b
    0xb0, 0x31,                          // 0093 movb $0x31, %al
    0xe6, 0xf4,                          // 0095 outb %al, $0xf4
    0xf4,                                // 0097 2: hlt
    0xeb, 0xfd,                          // 0098 jmp 2b
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // 009a .p2align 3, 0
    // gdt:
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // 00a0 .quad 0
    0xff, 0xff, 0x00, 0x00, 0x00, 0x9b, 0xcf, 0x00,  // 00a8 .quad 0x00cf9b000000ffff
    0xff, 0xff, 0x00, 0x00, 0x00, 0x93, 0xcf, 0x00,  // 00b0 .quad 0x00cf93000000ffff
    0xff, 0xff, 0x00, 0x00, 0x00, 0x9b, 0xaf, 0x00,  // 00b8 .quad 0x00af9b000000ffff
    // gdtr:
    0x1f, 0x00,              // 00c0 .word gdtr - gdt - 1
    0xa0, 0x00, 0x0f, 0x00,  // 00c2 .long ROM + gdt - rom
};

constexpr std::size_t kRomSize = 64 * 1024;
constexpr std::size_t kResetVectorOffset = 0xFFF0;
// ROM offset 0xfff0: ljmpw $0xF000, $(start16 - rom), i.e. to F000:0000.
constexpr std::array<std::uint8_t, 5> kResetVector = {0xea, 0x00, 0x00, 0x00, 0xf0};
static_assert(kProbeCode.size() <= kResetVectorOffset);

constexpr int kExitValue = 0x31;                    // what the guest writes to isa-debug-exit
constexpr int kExitStatus = (kExitValue << 1) | 1;  // what QEMU then exits with: 99
constexpr std::string_view kLoops = "2^25";         // LOOPS in the listing
constexpr milliseconds kPollInterval{5};

std::string BuildProbeRom() {
  std::string rom(kRomSize, '\0');
  std::copy(kProbeCode.begin(), kProbeCode.end(), rom.begin());
  std::copy(kResetVector.begin(), kResetVector.end(), rom.begin() + kResetVectorOffset);
  return rom;
}

// A private (0700) directory, removed with everything in it when the handle goes.
struct DirRemover {
  void operator()(const std::string* dir) const {
    std::error_code ignored;
    std::filesystem::remove_all(*dir, ignored);
    delete dir;
  }
};
using ScratchDir = std::unique_ptr<const std::string, DirRemover>;

Result<ScratchDir> MakeScratchDir() {
  std::error_code ec;
  std::filesystem::path base = std::filesystem::temp_directory_path(ec);  // $TMPDIR or /tmp
  if (ec) base = "/tmp";
  std::string dir = (base / "pp-kvm-probe-XXXXXX").string();
  if (::mkdtemp(dir.data()) == nullptr) {
    return std::unexpected(ErrnoError("kvm probe: create a temp dir in " + base.string(), errno));
  }
  return ScratchDir(new std::string(std::move(dir)));
}

Result<void> WriteNewFile(const std::string& path, std::string_view content) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return std::unexpected(ErrnoError("kvm probe: create " + path, errno));
  auto written = WriteAll(fd, content, path);
  if (::close(fd) != 0 && written) written = std::unexpected(ErrnoError("close " + path, errno));
  return written;
}

// The child QEMU: killed with SIGKILL and reaped unless Wait saw it exit, so no path leaves a
// running guest or a zombie behind.
class Child {
 public:
  explicit Child(pid_t pid) : pid_(pid) {}
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() { Kill(); }

  // The wait status once the child exited by itself before `deadline`; nullopt after killing it.
  Result<std::optional<int>> Wait(std::chrono::steady_clock::time_point deadline) {
    for (;;) {
      int status = 0;
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        return status;
      }
      if (r < 0 && errno != EINTR) {
        const int err = errno;
        // ECHILD: someone else reaped it (SIGCHLD ignored?); the pid may be reused, never kill it.
        if (err == ECHILD) pid_ = -1;
        return std::unexpected(ErrnoError("kvm probe: waitpid (is SIGCHLD ignored?)", err));
      }
      const auto now = std::chrono::steady_clock::now();
      if (now >= deadline) {
        Kill();
        return std::nullopt;
      }
      std::this_thread::sleep_for(
          std::min<std::chrono::steady_clock::duration>(kPollInterval, deadline - now));
    }
  }

 private:
  void Kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }

  pid_t pid_;
};

struct FileActionsDestroy {
  void operator()(posix_spawn_file_actions_t* actions) const {
    posix_spawn_file_actions_destroy(actions);
  }
};
struct SpawnAttrDestroy {
  void operator()(posix_spawnattr_t* attr) const { posix_spawnattr_destroy(attr); }
};

// Starts `argv` with stdin and stdout on /dev/null, stderr into `stderr_path`, an empty signal mask
// and default signal dispositions (the caller may block or ignore signals QEMU relies on).
Result<pid_t> Spawn(const std::vector<std::string>& argv, const std::string& stderr_path) {
  posix_spawn_file_actions_t actions;
  if (int err = posix_spawn_file_actions_init(&actions); err != 0) {
    return std::unexpected(ErrnoError("kvm probe: posix_spawn_file_actions_init", err));
  }
  const std::unique_ptr<posix_spawn_file_actions_t, FileActionsDestroy> actions_owner(&actions);
  posix_spawnattr_t attr;
  if (int err = posix_spawnattr_init(&attr); err != 0) {
    return std::unexpected(ErrnoError("kvm probe: posix_spawnattr_init", err));
  }
  const std::unique_ptr<posix_spawnattr_t, SpawnAttrDestroy> attr_owner(&attr);

  sigset_t none;
  sigset_t all;
  sigemptyset(&none);
  sigfillset(&all);
  const int stderr_flags = O_WRONLY | O_CREAT | O_TRUNC;
  int err = posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  if (err == 0) err = posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  if (err == 0)
    err = posix_spawn_file_actions_addopen(&actions, 2, stderr_path.c_str(), stderr_flags, 0600);
  if (err == 0)
    err = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  if (err == 0) err = posix_spawnattr_setsigmask(&attr, &none);
  if (err == 0) err = posix_spawnattr_setsigdefault(&attr, &all);
  if (err != 0) return std::unexpected(ErrnoError("kvm probe: prepare posix_spawn", err));

  std::vector<char*> args;
  for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  // glibc reports a failed exec here (and reaps that child), so a missing qemu is an error.
  if (int spawn_err = posix_spawnp(&pid, args[0], &actions, &attr, args.data(), environ);
      spawn_err != 0) {
    return std::unexpected(ErrnoError("kvm probe: cannot run " + argv[0], spawn_err));
  }
  return pid;
}

// At most 64 KiB; "" when the file is missing, unreadable or larger (it only adds detail).
std::string ReadSmallFile(const std::string& path) {
  auto content = ReadFile(path, 64 * 1024);
  return content ? *content : std::string();
}

// QEMU's last non-empty stderr line ("qemu-system-x86_64: failed to initialize kvm: ..."), capped.
std::string LastLine(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.remove_suffix(1);
  }
  const auto newline = text.rfind('\n');
  if (newline != std::string_view::npos) text.remove_prefix(newline + 1);
  return std::string(text.substr(0, 300));
}

std::string HowFar(std::string_view progress) {
  if (progress.find('L') != std::string_view::npos) {
    return std::string("guest reached long mode but did not finish ") + std::string(kLoops) +
           " loop iterations: instructions run far slower than under TCG, probably emulated";
  }
  if (progress.find('P') != std::string_view::npos) {
    return "guest reached protected mode but not long mode";
  }
  return "guest did not reach protected mode";
}

}  // namespace

Result<KvmProbeResult> ProbeAccelerator(const std::string& qemu_binary, std::string_view accel,
                                        milliseconds timeout) {
  if (accel.empty()) return Fail(Code::kInvalidArgument, "kvm probe: accel is empty");
  if (qemu_binary.empty()) return Fail(Code::kInvalidArgument, "kvm probe: qemu binary is empty");
  auto dir = MakeScratchDir();
  if (!dir) return std::unexpected(dir.error());
  const std::string rom = **dir + "/probe.rom";
  const std::string progress = **dir + "/progress";
  const std::string stderr_log = **dir + "/qemu.stderr";
  if (auto written = WriteNewFile(rom, BuildProbeRom()); !written) {
    return std::unexpected(written.error());
  }

  // clang-format off
  const std::vector<std::string> argv = {
      qemu_binary, "-accel", std::string(accel), "-machine", "pc", "-m", "16", "-bios", rom,
      "-display", "none", "-nodefaults", "-no-user-config", "-no-reboot",
      "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
      "-chardev", "file,id=progress,path=" + progress,
      "-device", "isa-debugcon,iobase=0xe9,chardev=progress"};
  // clang-format on
  const auto start = std::chrono::steady_clock::now();
  auto pid = Spawn(argv, stderr_log);
  if (!pid) return std::unexpected(pid.error());
  Child child(*pid);
  auto status = child.Wait(start + std::max(timeout, milliseconds(0)));
  if (!status) return std::unexpected(status.error());
  const auto elapsed =
      std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - start);
  const std::string ms = std::to_string(elapsed.count()) + " ms";

  if (!status->has_value()) {
    return KvmProbeResult{false, "no answer within " + std::to_string(timeout.count()) + " ms (" +
                                     HowFar(ReadSmallFile(progress)) + ")"};
  }
  const int wait_status = **status;
  if (WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == kExitStatus) {
    return KvmProbeResult{true, std::string("long mode reached and ") + std::string(kLoops) +
                                    " loop iterations done in " + ms};
  }
  if (WIFSIGNALED(wait_status)) {
    return KvmProbeResult{false, "qemu was killed by signal " +
                                     std::to_string(WTERMSIG(wait_status)) + " after " + ms};
  }
  const int code = WEXITSTATUS(wait_status);
  std::string detail = "qemu exited with status " + std::to_string(code) + " after " + ms +
                       ", not the probe's " + std::to_string(kExitStatus);
  if (code == 0) detail += " (the guest reset itself: -no-reboot)";
  if (const std::string last = LastLine(ReadSmallFile(stderr_log)); !last.empty()) {
    detail += ": " + last;
  }
  return KvmProbeResult{false, std::move(detail)};
}

}  // namespace pp::providers::libvirt
