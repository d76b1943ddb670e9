//! Tests of symbol attribution and crate filters.

mod owners {
    use super::super::*;
    use alloc::string::{String, ToString};
    use alloc::vec::Vec;

    fn owner(s: &str) -> Option<&str> {
        match attribute(s).owner {
            Owner::Crate(c) => Some(c),
            Owner::Unknown => None,
        }
    }

    fn crates(s: &str) -> Vec<String> {
        let mut v = Vec::new();
        assert!(for_each_crate(s, |c| v.push(c.to_string())), "{s}");
        v
    }

    #[test]
    fn v0_free_functions_and_statics() {
        assert_eq!(owner("_RNvNtCseqjPbERlUDJ_4core3fmt5write"), Some("core"));
        assert_eq!(owner("_RNvCs1120XHkyhlX_1a7COUNTER"), Some("a"));
        assert_eq!(
            owner("_RNvNtCsgbST6DSui6q_5alloc7raw_vec12handle_error"),
            Some("alloc")
        );
        assert_eq!(attribute("_RNvCs1120XHkyhlX_1a3fmt").mangling, Mangling::V0);
    }

    #[test]
    fn v0_trait_impl_belongs_to_the_impl_crate() {
        // <alloc::string::String as core::fmt::Write>::write_str
        let s = "_RNvXs15_NtCsgbST6DSui6q_5alloc6stringNtB6_6StringNtNtCseqjPbERlUDJ_4core3fmt5Write9write_str";
        assert_eq!(owner(s), Some("alloc"));
        assert_eq!(crates(s), ["alloc", "alloc", "core"]);
        // <core::fmt::Error as core::fmt::Debug>::fmt
        assert_eq!(
            owner("_RNvXsK_NtCseqjPbERlUDJ_4core3fmtNtB5_5ErrorNtB5_5Debug3fmt"),
            Some("core")
        );
        // core::fmt::num::imp::<impl Display for u64>::fmt: self type is a basic type.
        assert_eq!(
            owner("_RNvXs8_NtNtNtCseqjPbERlUDJ_4core3fmt3num3impmNtB9_7Display3fmt"),
            Some("core")
        );
    }

    #[test]
    fn v0_provided_trait_method_belongs_to_the_trait_crate() {
        // <alloc::string::String as core::fmt::Write>::write_fmt, instantiated in crate a.
        let s = "_RNvYNtNtCsgbST6DSui6q_5alloc6string6StringNtNtCseqjPbERlUDJ_4core3fmt5Write9write_fmtCs1120XHkyhlX_1a";
        assert_eq!(owner(s), Some("core"));
        // The instantiating crate `a` is not a mention.
        assert_eq!(crates(s), ["alloc", "core"]);
    }

    #[test]
    fn v0_generic_instantiation_belongs_to_the_generic_item() {
        // core::ptr::drop_glue::<alloc::string::String>, instantiated in a.
        let s = "_RINvNtCseqjPbERlUDJ_4core3ptr9drop_glueNtNtCsgbST6DSui6q_5alloc6string6StringECs1120XHkyhlX_1a";
        assert_eq!(owner(s), Some("core"));
        assert_eq!(crates(s), ["core", "alloc"]);
        // A backref-heavy inherent impl: <RawVecInner<A>>::reserve::do_reserve_and_handle::<Global>
        let s = "_RINvNvMs5_NtCsgbST6DSui6q_5alloc7raw_vecINtB8_11RawVecInnerpE7reserve21do_reserve_and_handleNtNtBa_5alloc6GlobalECs1120XHkyhlX_1a";
        assert_eq!(owner(s), Some("alloc"));
    }

    #[test]
    fn v0_closures_in_consts_and_empty_identifiers_parse() {
        // <std::sys::thread_local::native::lazy::Storage<Cell<(u64, u64)>, !>>::get_or_init_slow::<
        //   <RandomState>::new::KEYS::{K#0}::{closure#1}::{closure#0}>
        let s = "_RINvMs0_NtNtNtNtCs4asks4yiE7J_3std3sys12thread_local6native4lazyINtB6_7StorageINtNtCseqjPbERlUDJ_4core4cell4CellTyyEEzE16get_or_init_slowNCNCNKNvNvMNtNtBe_4hash6randomNtB2m_11RandomState3new4KEYS0s_00ECs9GZH0G3F8sq_12real_objects";
        // Three empty identifiers in a row: K#0, closure#1, closure#0.
        assert_eq!(
            owner("_RNCNCNKNvNvCs4asks4yiE7J_3std3new4KEYS0s_00"),
            Some("std")
        );
        assert_eq!(owner(s), Some("std"));
        // Crates reached through back-references are visited again.
        assert_eq!(crates(s), ["std", "std", "core", "std", "std"]);
    }

    #[test]
    fn v0_allocator_shims_belong_to_alloc() {
        assert_eq!(
            owner("_RNvCsfdYgyGz23Lv_7___rustc12___rust_alloc"),
            Some("alloc")
        );
        assert_eq!(
            owner("_RNvCsfdYgyGz23Lv_7___rustc35___rust_no_alloc_shim_is_unstable_v2"),
            Some("alloc")
        );
        assert_eq!(
            owner("_RNvCsfdYgyGz23Lv_7___rustc17rust_begin_unwind"),
            Some("__rustc")
        );
    }

    #[test]
    fn v0_garbage_has_no_owner() {
        for s in [
            "_R",
            "_RX",
            "_RNvC",
            "_RNvCs_99999a",
            "_RB_",
            "_RC0",
            "_RYzC",
        ] {
            assert_eq!(owner(s), None, "{s}");
        }
        // The owner is read from the prefix; a bad tail only fails the
        // full parse.
        assert_eq!(owner("_RIC1aBz_E"), Some("a"));
        assert!(!for_each_crate("_RIC1aBz_E", |_| {}));
        assert!(
            !CrateFilter::crates(&["a"])
                .strict(true)
                .accepts("_RIC1aBz_E")
        );
        assert!(CrateFilter::crates(&["a"]).accepts("_RIC1aBz_E"));
        // Deep nesting is cut off, not a stack overflow.
        let mut deep = String::from("_R");
        for _ in 0..10_000 {
            deep.push_str("INv");
        }
        assert_eq!(owner(&deep), None);
        // Back-references that double the tree at every level: bounded
        // work, no owner.
        let mut bomb = String::from("_RINvC1a1fTB8_");
        for _ in 0..40 {
            bomb.push_str("TB8_B8_E");
        }
        bomb.push('E');
        let start = std::time::Instant::now();
        let _ = attribute(&bomb);
        let _ = for_each_crate(&bomb, |_| {});
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn v0_dyn_fn_const_and_tuple_types_parse() {
        // a::f::<dyn core::fmt::Debug, fn(u8) -> i32, [u8; 4], (u8, bool), 7>
        let s = "_RINvCs1_1a1fDNtNtCs2_4core3fmt5DebugEL_FhElAhj4_ThbEKj7_E";
        assert_eq!(owner(s), Some("a"));
        assert_eq!(crates(s), ["a", "core"]);
    }

    #[test]
    fn legacy_names() {
        assert_eq!(
            owner("_ZN4core3fmt5write17h0123456789abcdefE"),
            Some("core")
        );
        assert_eq!(
            attribute("_ZN4core3fmt5write17h0123456789abcdefE").mangling,
            Mangling::Legacy
        );
        let display = "_ZN60_$LT$alloc..string..String$u20$as$u20$core..fmt..Display$GT$3fmt17h0123456789abcdefE";
        assert_eq!(owner(display), Some("alloc"));
        assert_eq!(crates(display), ["alloc", "core"]);
        // <&T as core::fmt::Debug>::fmt: no path self type, so the trait's crate.
        assert_eq!(
            owner("_ZN42_$LT$$RF$T$u20$as$u20$core..fmt..Debug$GT$3fmt17h0123456789abcdefE"),
            Some("core")
        );
        // Generic instantiation: core::ptr::drop_in_place<kernel_image::Secret>
        let s = "_ZN4core3ptr41drop_in_place$LT$kernel_image..Secret$GT$17h0123456789abcdefE";
        assert_eq!(owner(s), Some("core"));
        assert_eq!(crates(s), ["core", "kernel_image"]);
        // ThinLTO suffixes are tolerated.
        assert_eq!(
            owner("_ZN4core3fmt5write17h0123456789abcdefE.llvm.1234"),
            Some("core")
        );
        assert_eq!(owner("_ZN4core3fmt5wri"), None);
    }

    #[test]
    fn unmangled_builtins_and_shims() {
        for s in [
            "memcpy",
            "memset",
            "__udivti3",
            "__umodti3",
            "__muloti4",
            "__floattidf",
            "__fixunsdfti",
            "__atomic_load_16",
            "__llvm_memcpy_element_unordered_atomic_8",
            "__rust_probestack",
            "__extendhfsf2",
        ] {
            assert_eq!(owner(s), Some("compiler_builtins"), "{s}");
        }
        for s in [
            "__rust_alloc",
            "__rust_dealloc",
            "__rust_no_alloc_shim_is_unstable_v2",
        ] {
            assert_eq!(owner(s), Some("alloc"), "{s}");
        }
        for s in [
            "__bss_start",
            "_start",
            "kernel_main",
            "__kernel_end",
            "__rg_alloc",
            "__",
            "__2",
        ] {
            assert_eq!(owner(s), None, "{s}");
        }
    }

    #[test]
    fn filters() {
        let public = ["core", "alloc", "compiler_builtins", "dispatcher"];
        let f = CrateFilter::crates(&public);
        assert!(f.accepts("memcpy"));
        assert!(f.accepts("_RNvNtCseqjPbERlUDJ_4core3fmt5write"));
        assert!(!f.accepts("_RNvCs1_12kernel_image4boot"));
        assert!(!f.accepts("kernel_main"));
        let generic_over_internal =
            "_ZN4core3ptr41drop_in_place$LT$kernel_image..Secret$GT$17h0123456789abcdefE";
        assert!(f.accepts(generic_over_internal));
        assert!(!f.strict(true).accepts(generic_over_internal));
        assert!(f.strict(true).accepts(
            "_RNvXs15_NtCsgbST6DSui6q_5alloc6stringNtB6_6StringNtNtCseqjPbERlUDJ_4core3fmt5Write9write_str"
        ));
        assert!(
            f.strict(true)
                .accepts("_RNvCsfdYgyGz23Lv_7___rustc12___rust_alloc")
        );
        assert!(CrateFilter::all().accepts("kernel_main"));
    }
}

mod unwind_abi {
    use super::super::*;

    #[test]
    fn only_the_personality_and_resume_belong_to_the_unwind_pseudo_crate() {
        for name in ["rust_eh_personality", "_Unwind_Resume"] {
            assert_eq!(attribute(name).owner, Owner::Crate(UNWIND_CRATE), "{name}");
        }
        for name in [
            "__register_frame",
            "__deregister_frame",
            "_Unwind_RaiseException",
            "_Unwind_Backtrace",
        ] {
            assert_eq!(attribute(name).owner, Owner::Unknown, "{name}");
        }
    }
}
