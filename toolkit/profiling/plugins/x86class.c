/*
 * meltoolkit: executed x86-64 instructions by pipe class, for predicting this host's latency the way
 * toolkit.profiling.predict predicts a board's. QEMU's howvec plugin has no x86 class table (it counts x86
 * instructions individually, keyed by their first four bytes), so this plugin classifies each instruction once,
 * when its block is translated, from its disassembly (AT&T syntax, as QEMU prints it), and counts executions
 * with one inline counter per class (exact for one guest thread).
 *
 * Classes (every instruction in exactly one, so they sum to the total; *_mem ones also read or write memory):
 *   simd_vector[_mem]   packed SSE/AVX on xmm/ymm registers: arithmetic, FMA, logic, shuffles, conversions
 *   fp_scalar[_mem]     scalar SSE/AVX (ss/sd suffix) and x87
 *   load_store_simd     a move between an xmm/ymm register and memory, nothing computed
 *   load_store          an integer move to or from memory, push, pop, string moves
 *   integer[_mem]       the rest of the integer instructions (lea and nop never touch memory)
 *   branch              jumps, calls, returns
 * Window: the bench runner's --count-only mode brackets its timed loop with two lseek(-1, MARK) calls that fail
 * with EBADF and do nothing else; this plugin snapshots its counters at each, so one run gives the instructions
 * of exactly the loop (imports, session creation and the warm-up inference are outside the window).
 * Output, at exit: "window: yes|no", "insns: N" and one "Class: NAME (N hits)" line per class, counted inside
 * the window when both marks were seen, else over the whole process.
 */
#include <glib.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

enum { SIMD, SIMD_MEM, FPS, FPS_MEM, LDST_SIMD, LDST, INT, INT_MEM, BRANCH, NCLASS };
static const char *names[NCLASS] = {
    "simd_vector", "simd_vector_mem", "fp_scalar", "fp_scalar_mem", "load_store_simd", "load_store",
    "integer", "integer_mem", "branch",
};
static uint64_t counts[NCLASS];
static uint64_t at_start[NCLASS], at_stop[NCLASS];
static int marks_seen;

#define SYS_LSEEK 8 /* x86_64 */
#define MARK_START 0x6D656C7374617274ULL /* "melstart" */
#define MARK_STOP 0x6D656C73746F7021ULL /* "melstop!" */

static const char *branches[] = {"j", "call", "ret", "loop", NULL};
static const char *moves[] = {"mov", "vmov", "vbroadcast", "vpbroadcast", "vmaskmov", "vpmaskmov", "lddqu",
                              "vlddqu", "vinsert", "vextract", "vgather", "vpgather", "push", "pop", "stos",
                              "lods", "cmov", NULL};
static const char *no_memory[] = {"lea", "nop", "prefetch", NULL};

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

static int classify(const char *disas)
{
    char mnemonic[32] = {0};
    const char *operands = disas;
    size_t len = strcspn(disas, " \t");
    if (len >= sizeof mnemonic) {
        len = sizeof mnemonic - 1;
    }
    memcpy(mnemonic, disas, len);
    operands += len;
    int memory = strchr(operands, '(') != NULL && !starts_with_any(mnemonic, no_memory);
    int vector = strstr(operands, "%xmm") || strstr(operands, "%ymm") || strstr(operands, "%zmm");

    if (starts_with_any(mnemonic, branches)) {
        return BRANCH;
    }
    if (vector && memory && starts_with_any(mnemonic, moves)) {
        return LDST_SIMD; /* vmovups, vmovss, vbroadcastss (mem), ...: a load or a store, nothing computed */
    }
    if (is_scalar_fp(mnemonic, len) && (vector || mnemonic[0] == 'f')) {
        return memory ? FPS_MEM : FPS;
    }
    if (vector) {
        return memory ? SIMD_MEM : SIMD;
    }
    if (memory) {
        return starts_with_any(mnemonic, moves) ? LDST : INT_MEM;
    }
    return starts_with_any(mnemonic, (const char *[]){"push", "pop", NULL}) ? LDST : INT;
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t n = qemu_plugin_tb_n_insns(tb);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        char *disas = qemu_plugin_insn_disas(insn);
        int class = classify(disas ? disas : "");
        g_free(disas);
        qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &counts[class], 1);
    }
}

static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu, int64_t num, uint64_t a1, uint64_t a2,
                       uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6, uint64_t a7, uint64_t a8)
{
    if (num != SYS_LSEEK || (int32_t)a1 != -1) { /* the fd is an int: QEMU passes it zero-extended */
        return;
    }
    if (a2 == MARK_START) {
        memcpy(at_start, counts, sizeof counts);
        marks_seen |= 1;
    } else if (a2 == MARK_STOP) {
        memcpy(at_stop, counts, sizeof counts);
        marks_seen |= 2;
    }
}

static void plugin_exit(qemu_plugin_id_t id, void *p)
{
    uint64_t total = 0, window[NCLASS];
    int windowed = marks_seen == 3;
    GString *out = g_string_new("");
    for (int c = 0; c < NCLASS; c++) {
        window[c] = windowed ? at_stop[c] - at_start[c] : counts[c];
        total += window[c];
    }
    g_string_append_printf(out, "window: %s\ninsns: %" PRIu64 "\n", windowed ? "yes" : "no", total);
    for (int c = 0; c < NCLASS; c++) {
        g_string_append_printf(out, "Class: %s (%" PRIu64 " hits)\n", names[c], window[c]);
    }
    qemu_plugin_outs(out->str);
    g_string_free(out, TRUE);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    if (strcmp(info->target_name, "x86_64") != 0) {
        fprintf(stderr, "x86class: classifies x86_64 guests only, not %s\n", info->target_name);
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
    qemu_plugin_register_atexit_cb(id, plugin_exit, NULL);
    return 0;
}
