//! The `#[ktest]` attribute: registers an in-kernel test function.
//!
//! `#[ktest] fn name() -> KtestResult { ... }` keeps the function and adds a
//! `KernelTest` descriptor to the `spindle_ktests` link section; the kernel's
//! test runner walks that section (bounded by the linker-provided
//! `__start_spindle_ktests` / `__stop_spindle_ktests`), so a test registers
//! itself wherever it is defined. No `syn`: the only thing needed from the
//! item is the function's name.

use proc_macro::{TokenStream, TokenTree};

/// Marks a function `fn() -> crate::ktest::KtestResult` as an in-kernel test.
#[proc_macro_attribute]
pub fn ktest(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        return error("#[ktest] takes no arguments");
    }
    let mut tokens = item.clone().into_iter();
    let mut name = None;
    while let Some(token) = tokens.next() {
        if let TokenTree::Ident(ident) = &token
            && ident.to_string() == "fn"
        {
            if let Some(TokenTree::Ident(fn_name)) = tokens.next() {
                name = Some(fn_name.to_string());
            }
            break;
        }
    }
    let Some(name) = name else {
        return error("#[ktest] must be placed on a function");
    };
    let registration = format!(
        "#[used]
         #[unsafe(link_section = \"spindle_ktests\")]
         #[allow(non_upper_case_globals)]
         static __ktest_descriptor_{name}: crate::ktest::KernelTest = crate::ktest::KernelTest {{
             name: \"{name}\",
             module: module_path!(),
             run: {name},
         }};"
    );
    let mut output = item;
    output.extend(
        registration
            .parse::<TokenStream>()
            .expect("registration tokens are valid"),
    );
    output
}

fn error(message: &str) -> TokenStream {
    format!("compile_error!({message:?});")
        .parse()
        .expect("compile_error tokens are valid")
}
