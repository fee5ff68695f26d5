/*
 * COMPILE-ONLY declarations of the MicroPython C API that tinyml's generated bindings use,
 * written from MicroPython's documentation (docs/develop/cmodules, docs/develop/natmod) so CI
 * can compile the generated C with -Werror and inspect the objects (readelf) where no
 * MicroPython checkout is reachable. Nothing here links or runs: real builds use the user's
 * MicroPython tree (USER_C_MODULES, or MPY_DIR for py/dynruntime.mk). Layouts are placeholders.
 */
#ifndef TINYML_MP_COMPILE_ONLY_H
#define TINYML_MP_COMPILE_ONLY_H

#include <stddef.h>
#include <stdint.h>

typedef void *mp_obj_t;
typedef intptr_t mp_int_t;
typedef uintptr_t mp_uint_t;
typedef float mp_float_t;
typedef size_t qstr;

typedef struct { const void *type; } mp_obj_base_t;
typedef struct {
    void *buf;
    size_t len;
    mp_int_t typecode;
} mp_buffer_info_t;

#define MP_BUFFER_READ (1)
#define MP_BUFFER_WRITE (2)
#define MP_OBJ_FROM_PTR(p) ((mp_obj_t)(p))
#define MP_OBJ_NEW_QSTR(q) ((mp_obj_t)(((mp_uint_t)(q) << 3) | 2))

typedef mp_obj_t (*mp_fun_1_t)(mp_obj_t);
typedef mp_obj_t (*mp_fun_2_t)(mp_obj_t, mp_obj_t);
typedef struct {
    mp_obj_base_t base;
    const void *fun;
} mp_obj_fun_builtin_fixed_t;
extern const int mp_type_fun_builtin_1, mp_type_fun_builtin_2;
#define MP_DEFINE_CONST_FUN_OBJ_1(obj_name, fun_name) \
    const mp_obj_fun_builtin_fixed_t obj_name = {{&mp_type_fun_builtin_1}, (const void *)(fun_name)}
#define MP_DEFINE_CONST_FUN_OBJ_2(obj_name, fun_name) \
    const mp_obj_fun_builtin_fixed_t obj_name = {{&mp_type_fun_builtin_2}, (const void *)(fun_name)}

#if defined(MICROPY_ENABLE_DYNRUNTIME)
/* py/dynruntime.h: every runtime call goes through the table the loader patches in. */
typedef struct {
    mp_obj_t (*obj_new_int)(mp_int_t);
    mp_obj_t (*obj_new_float)(mp_float_t);
    mp_obj_t (*obj_new_str)(const char *, size_t);
    mp_obj_t (*obj_new_tuple)(size_t, const mp_obj_t *);
    void (*get_buffer_raise)(mp_obj_t, mp_buffer_info_t *, mp_uint_t);
    void (*raise_value_error)(const char *);
    void (*store_global)(qstr, mp_obj_t);
    const mp_obj_t const_none;
} mp_fun_table_t;
extern const mp_fun_table_t mp_fun_table;
#define mp_obj_new_int(v) (mp_fun_table.obj_new_int(v))
#define mp_obj_new_float(v) (mp_fun_table.obj_new_float(v))
#define mp_obj_new_str(s, n) (mp_fun_table.obj_new_str((s), (n)))
#define mp_obj_new_tuple(n, items) (mp_fun_table.obj_new_tuple((n), (items)))
#define mp_get_buffer_raise(o, info, flags) (mp_fun_table.get_buffer_raise((o), (info), (flags)))
#define mp_raise_ValueError(msg) (mp_fun_table.raise_value_error(msg))
#define mp_store_global(q, o) (mp_fun_table.store_global((q), (o)))
#define mp_const_none (mp_fun_table.const_none)
typedef struct { mp_obj_base_t base; } mp_obj_fun_bc_t;
#define MP_DYNRUNTIME_INIT_ENTRY (void)self; (void)n_args; (void)n_kw; (void)args;
#define MP_DYNRUNTIME_INIT_EXIT return mp_const_none;
#else
/* py/runtime.h + py/obj.h of a firmware build (user C modules). */
typedef struct { mp_obj_t key; mp_obj_t value; } mp_rom_map_elem_t;
typedef struct { mp_obj_base_t base; size_t used; const void *table; } mp_obj_dict_t;
typedef struct { mp_obj_base_t base; mp_obj_dict_t *globals; } mp_obj_module_t;
typedef struct { mp_obj_base_t base; size_t hash, len; const char *data; } mp_obj_str_t;
typedef struct { mp_obj_base_t base; size_t len; mp_obj_t items[]; } mp_rom_obj_tuple_t;
typedef struct { mp_obj_base_t base; mp_float_t value; } mp_obj_float_t;
extern const int mp_type_module, mp_type_dict, mp_type_str, mp_type_tuple, mp_type_float;
#define MP_ROM_QSTR(q) ((mp_obj_t)(((mp_uint_t)(q) << 3) | 2))
#define MP_ROM_INT(i) ((mp_obj_t)(((mp_uint_t)(i) << 1) | 1))
#define MP_ROM_PTR(p) ((mp_obj_t)(p))
#define MP_DEFINE_CONST_DICT(name, table) \
    const mp_obj_dict_t name = {{&mp_type_dict}, sizeof(table) / sizeof((table)[0]), (table)}
#define MP_DEFINE_STR_OBJ(name, str) const mp_obj_str_t name = {{&mp_type_str}, 0, sizeof(str) - 1, (str)}
#define MP_REGISTER_MODULE(name, module) extern const mp_obj_module_t module
#define MICROPY_OBJ_REPR_A 0
#define MICROPY_OBJ_REPR_C 2
#define MICROPY_OBJ_REPR_D 3
#define MICROPY_OBJ_REPR MICROPY_OBJ_REPR_A
#define MICROPY_PY_BUILTINS_FLOAT 1
extern const mp_obj_t mp_const_none_obj;
#define mp_const_none (mp_const_none_obj)
void mp_get_buffer_raise(mp_obj_t obj, mp_buffer_info_t *info, mp_uint_t flags);
void mp_raise_ValueError(const char *msg);
mp_obj_t mp_obj_new_int(mp_int_t value);
#endif

/* The qstrs the bindings use (a real build generates them from the source). */
enum {
    MP_QSTR___name__ = 1, MP_QSTR_invoke, MP_QSTR_predict, MP_QSTR_sha256, MP_QSTR_runtime, MP_QSTR_input_shape,
    MP_QSTR_output_shape, MP_QSTR_input_dtype, MP_QSTR_output_dtype, MP_QSTR_input_bytes, MP_QSTR_output_bytes,
    MP_QSTR_input_scale, MP_QSTR_input_zero_point, MP_QSTR_output_scale, MP_QSTR_output_zero_point,
    MP_QSTR_arena_bytes, MP_QSTR_int8, MP_QSTR_float32, MP_QSTR_c, MP_QSTR_natmod, MP_QSTR_TINYML_MODULE_NAME
};

#endif /* TINYML_MP_COMPILE_ONLY_H */
