/*
 * meltoolkit: executed guest instructions by pipe class, for aarch64 guests (the emulated boards) and x86_64
 * guests (this host under qemu-x86_64), counted in segments between marks the runner makes.
 *
 * Why one plugin of our own rather than QEMU's insn + howvec: the total and the classes come from one counter
 * set, so the total is the sum of its classes by construction; and the counters stay exact with several guest
 * threads. QEMU 7.2's inline adds (`inline=on`) go to one shared counter from every vCPU thread without
 * atomics, so concurrent threads lose updates. Here each translation block carries its instruction count per
 * class, and a callback at the block's start adds that histogram to the counters of the vCPU (in user mode,
 * the guest thread) that runs it: each thread writes only its own slot, and the slots are summed when read.
 * A block is counted whole when it starts; a guest instruction that faults in mid-block would count the rest of
 * its block too, which the runner's inference loop never does.
 *
 * Classes (each instruction in exactly one):
 *   aarch64, from the A64 encoding (bits 28:25, then the bits that split each group):
 *     simd_vector, simd_scalar, fp_scalar, load_store_simd, load_store, integer, branch, sve, other
 *   x86_64, from the disassembly (AT&T syntax, as QEMU prints it); *_mem ones also read or write memory:
 *     simd_vector[_mem]   packed SSE/AVX on xmm/ymm/zmm registers: arithmetic, FMA, logic, shuffles, conversions
 *     fp_scalar[_mem]     scalar SSE/AVX (ss/sd suffix) and x87
 *     load_store_simd     a move between a vector register and memory, nothing computed
 *     load_store          an integer move to or from memory, push, pop, string moves
 *     integer[_mem]       the rest of the integer instructions (lea and nop never touch memory)
 *     branch              jumps, calls, returns
 * Marks: the runner's --count-only mode calls lseek(-1, MARK, SEEK_SET), which fails with EBADF and does
 * nothing else, before its first counted inference and after each segment of inferences. At each mark this
 * plugin sums the vCPU slots; segment i is the difference of marks i and i+1.
 * Output, at exit: "marks: K", then one "segment: total=N <class>=N ..." line per segment between marks, and
 * one "process: total=N <class>=N ..." line for the whole process.
 */
#include <glib.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#define NCLASS_MAX 10
#define MAX_SLOTS 256 /* guest threads alive at once; more share one slot updated atomically */
#define MAX_MARKS 64
#define MARK 0x6D656C7374617274ULL /* "melstart" */

enum { A64_SIMD, A64_SIMDS, A64_FP, A64_LDST_SIMD, A64_LDST, A64_INT, A64_BRANCH, A64_SVE, A64_OTHER, A64_N };
static const char *a64_names[A64_N] = {
    "simd_vector", "simd_scalar", "fp_scalar", "load_store_simd", "load_store", "integer", "branch", "sve", "other",
};
enum { X_SIMD, X_SIMD_MEM, X_FPS, X_FPS_MEM, X_LDST_SIMD, X_LDST, X_INT, X_INT_MEM, X_BRANCH, X_N };
static const char *x86_names[X_N] = {
    "simd_vector", "simd_vector_mem", "fp_scalar", "fp_scalar_mem", "load_store_simd", "load_store",
    "integer", "integer_mem", "branch",
};

typedef struct {
    uint64_t count[NCLASS_MAX];
    char pad[128 - (NCLASS_MAX * sizeof(uint64_t)) % 128]; /* one slot per cache-line group: no false sharing */
} Slot;

static Slot slots[MAX_SLOTS];
static Slot shared; /* vCPU indices past MAX_SLOTS, added atomically */
static uint64_t marks[MAX_MARKS][NCLASS_MAX];
static int n_marks, lost_marks;
static GMutex mark_lock;
static int nclass;
static const char **names;
static int64_t lseek_number;
static int (*classify)(struct qemu_plugin_insn *insn);

/* --- aarch64: the A64 top-level decode (Arm ARM C4.1) ------------------------------------------------ */

static int a64_branch_group(uint32_t w)
{
    if ((w & 0x7c000000) == 0x14000000 || (w & 0xfe000000) == 0x54000000 || (w & 0x7e000000) == 0x34000000
        || (w & 0x7e000000) == 0x36000000 || (w & 0xfe000000) == 0xd6000000) {
        return A64_BRANCH; /* B/BL, B.cond, CBZ/CBNZ, TBZ/TBNZ, BR/BLR/RET */
    }
    return A64_OTHER; /* exception generation, system instructions, barriers, hints */
}

static int a64_classify(struct qemu_plugin_insn *insn)
{
    uint32_t w;
    if (qemu_plugin_insn_size(insn) != 4) {
        return A64_OTHER;
    }
    memcpy(&w, qemu_plugin_insn_data(insn), 4);
    switch ((w >> 25) & 0xf) {
    case 0x2:
        return A64_SVE;
    case 0x8: case 0x9:
        return A64_INT; /* data processing, immediate */
    case 0xa: case 0xb:
        return a64_branch_group(w);
    case 0x4: case 0x6: case 0xc: case 0xe:
        return (w & (1u << 26)) ? A64_LDST_SIMD : A64_LDST; /* bit 26: an FP/SIMD register */
    case 0x5: case 0xd:
        return A64_INT; /* data processing, register */
    case 0x7:
        return A64_SIMD; /* AdvSIMD vector (and the crypto extensions) */
    case 0xf:
        return (w & (1u << 30)) ? A64_SIMDS : A64_FP;
    default:
        return A64_OTHER; /* SME, reserved, unallocated */
    }
}

/* --- x86_64: from QEMU's disassembly ------------------------------------------------------------------ */

static const char *branches[] = {"j", "call", "ret", "loop", NULL};
static const char *moves[] = {"mov", "vmov", "vbroadcast", "vpbroadcast", "vmaskmov", "vpmaskmov", "lddqu",
                              "vlddqu", "vinsert", "vextract", "vgather", "vpgather", "push", "pop", "stos",
                              "lods", "cmov", NULL};
static const char *no_memory[] = {"lea", "nop", "prefetch", NULL};
static const char *stack[] = {"push", "pop", NULL};

static int starts_with_any(const char *s, const char **prefixes)
{
    for (; *prefixes; prefixes++) {
        if (strncmp(s, *prefixes, strlen(*prefixes)) == 0) {
            return 1;
        }
    }
    return 0;
}

static int is_scalar_fp(const char *mnemonic, size_t len)
{
    if (mnemonic[0] == 'f') {
        return 1; /* x87 */
    }
    if (mnemonic[0] == 'p' || strncmp(mnemonic, "vp", 2) == 0) {
        return 0; /* packed integer: vpabsd ends in "sd" too */
    }
    return len > 2 && (strcmp(mnemonic + len - 2, "ss") == 0 || strcmp(mnemonic + len - 2, "sd") == 0)
           && strncmp(mnemonic, "movs", 4) != 0 && strncmp(mnemonic, "cmps", 4) != 0;
}

static int x86_classify_text(const char *disas)
{
    char mnemonic[32] = {0};
    size_t len = strcspn(disas, " \t");
    if (len >= sizeof mnemonic) {
        len = sizeof mnemonic - 1;
    }
    memcpy(mnemonic, disas, len);
    const char *operands = disas + len;
    int memory = strchr(operands, '(') != NULL && !starts_with_any(mnemonic, no_memory);
    int vector = strstr(operands, "%xmm") || strstr(operands, "%ymm") || strstr(operands, "%zmm");

    if (starts_with_any(mnemonic, branches)) {
        return X_BRANCH;
    }
    if (vector && memory && starts_with_any(mnemonic, moves)) {
        return X_LDST_SIMD; /* vmovups, vmovss, vbroadcastss (mem), ...: a load or a store, nothing computed */
    }
    if (is_scalar_fp(mnemonic, len) && (vector || mnemonic[0] == 'f')) {
        return memory ? X_FPS_MEM : X_FPS;
    }
    if (vector) {
        return memory ? X_SIMD_MEM : X_SIMD;
    }
    if (memory) {
        return starts_with_any(mnemonic, moves) ? X_LDST : X_INT_MEM;
    }
    return starts_with_any(mnemonic, stack) ? X_LDST : X_INT;
}

static int x86_classify(struct qemu_plugin_insn *insn)
{
    char *disas = qemu_plugin_insn_disas(insn);
    int class = x86_classify_text(disas ? disas : "");
    g_free(disas);
    return class;
}

/* --- counting ----------------------------------------------------------------------------------------- */

static void tb_exec(unsigned int vcpu, void *userdata)
{
    const uint32_t *histogram = userdata;
    if (vcpu < MAX_SLOTS) {
        uint64_t *count = slots[vcpu].count;
        for (int c = 0; c < nclass; c++) {
            count[c] += histogram[c];
        }
        return;
    }
    for (int c = 0; c < nclass; c++) {
        __atomic_fetch_add(&shared.count[c], histogram[c], __ATOMIC_RELAXED);
    }
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    uint32_t *histogram = g_new0(uint32_t, NCLASS_MAX); /* lives as long as the block may run: never freed */
    size_t n = qemu_plugin_tb_n_insns(tb);
    for (size_t i = 0; i < n; i++) {
        histogram[classify(qemu_plugin_tb_get_insn(tb, i))]++;
    }
    qemu_plugin_register_vcpu_tb_exec_cb(tb, tb_exec, QEMU_PLUGIN_CB_NO_REGS, histogram);
}

static void sum_slots(uint64_t *out)
{
    for (int c = 0; c < nclass; c++) {
        out[c] = __atomic_load_n(&shared.count[c], __ATOMIC_RELAXED);
    }
    for (int s = 0; s < MAX_SLOTS; s++) {
        for (int c = 0; c < nclass; c++) {
            out[c] += __atomic_load_n(&slots[s].count[c], __ATOMIC_RELAXED);
        }
    }
}

static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu, int64_t num, uint64_t a1, uint64_t a2,
                       uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6, uint64_t a7, uint64_t a8)
{
    if (num != lseek_number || (int32_t)a1 != -1 || a2 != MARK) { /* the fd is an int, passed zero-extended */
        return;
    }
    g_mutex_lock(&mark_lock);
    if (n_marks < MAX_MARKS) {
        sum_slots(marks[n_marks++]);
    } else {
        lost_marks++;
    }
    g_mutex_unlock(&mark_lock);
}

static void append_counts(GString *out, const char *label, const uint64_t *after, const uint64_t *before)
{
    uint64_t total = 0;
    for (int c = 0; c < nclass; c++) {
        total += after[c] - (before ? before[c] : 0);
    }
    g_string_append_printf(out, "%s: total=%" PRIu64, label, total);
    for (int c = 0; c < nclass; c++) {
        g_string_append_printf(out, " %s=%" PRIu64, names[c], after[c] - (before ? before[c] : 0));
    }
    g_string_append(out, "\n");
}

static void plugin_exit(qemu_plugin_id_t id, void *p)
{
    uint64_t process[NCLASS_MAX];
    GString *out = g_string_new("");
    g_string_append_printf(out, "marks: %d\nlost marks: %d\n", n_marks, lost_marks);
    for (int m = 0; m + 1 < n_marks; m++) {
        append_counts(out, "segment", marks[m + 1], marks[m]);
    }
    sum_slots(process);
    append_counts(out, "process", process, NULL);
    qemu_plugin_outs(out->str);
    g_string_free(out, TRUE);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    if (strcmp(info->target_name, "aarch64") == 0) {
        classify = a64_classify, names = a64_names, nclass = A64_N, lseek_number = 62;
    } else if (strcmp(info->target_name, "x86_64") == 0) {
        classify = x86_classify, names = x86_names, nclass = X_N, lseek_number = 8;
    } else {
        fprintf(stderr, "insnclass: classifies aarch64 and x86_64 guests only, not %s\n", info->target_name);
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
    qemu_plugin_register_atexit_cb(id, plugin_exit, NULL);
    return 0;
}
