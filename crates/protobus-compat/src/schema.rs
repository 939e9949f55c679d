use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use prost::Message as _;
use prost_types::{FileDescriptorProto, FileDescriptorSet};
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};

use crate::Error;

/// A file that the schema imports, by the name it is imported as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    /// The import path, e.g. `shop/v1/money.proto` (a registry reference's `name`).
    pub name: String,
    /// Its `.proto` source, shared: one registered schema imported under
    /// several names, or by several schemas, is one copy.
    pub source: Arc<str>,
    /// The registry subject and version it was resolved from, if any. Two
    /// imports of the same subject and version are known to be identical.
    pub reference: Option<(String, i32)>,
}

/// One `.proto` file compiled with everything it imports.
#[derive(Debug, Clone)]
pub struct Schema {
    main: String,
    /// Position of the main file in `files`.
    main_index: usize,
    /// Every file compiled with it; shared by the schemas of one contract.
    files: Arc<Vec<FileDescriptorProto>>,
    references: HashMap<String, (String, i32)>,
    /// The encoded main file as compiled, custom options included.
    encoded: Vec<u8>,
    /// The encoded set of every compiled file, custom options included.
    encoded_set: Arc<Vec<u8>>,
}

/// Decoded descriptors take about this many bytes per encoded byte (small
/// structs, a `String` per name, a `Vec` per list): measured with a counting
/// allocator on 0.1–3 MB schemas of messages and of enums (19–24).
const DESCRIPTOR_BYTES_PER_ENCODED_BYTE: usize = 20;

/// The name the compiled schema itself gets (unless a dependency already has it).
const MAIN_NAME: &str = "schema.proto";

impl Schema {
    /// Compiles `source` with `dependencies` as its importable files. The
    /// well-known types (`google/protobuf/*.proto`) are always importable.
    /// Text that nests deeper than [`MAX_NESTING`](crate::MAX_NESTING) is
    /// refused before it is parsed.
    pub fn compile(source: &str, dependencies: &[Dependency]) -> Result<Self, Error> {
        Self::compile_with(&Self::main_name(dependencies), source, dependencies, true)
    }

    /// [`compile`](Self::compile) without source info (comments and
    /// positions, most of a compiled file's size): what a registry keeps.
    /// Findings then carry no location.
    pub fn compile_compact(source: &str, dependencies: &[Dependency]) -> Result<Self, Error> {
        Self::compile_with(&Self::main_name(dependencies), source, dependencies, false)
    }

    fn main_name(dependencies: &[Dependency]) -> String {
        let mut main = MAIN_NAME.to_owned();
        while dependencies.iter().any(|d| d.name == main) {
            main.insert(0, '_');
        }
        main
    }

    /// [`compile`](Self::compile) under the file name `main`, keeping source
    /// info, so that diagnostics and findings point at the file as its
    /// authors know it.
    pub fn compile_named(
        main: &str,
        source: &str,
        dependencies: &[Dependency],
    ) -> Result<Self, Error> {
        Self::compile_with(main, source, dependencies, true)
    }

    fn compile_with(
        main: &str,
        source: &str,
        dependencies: &[Dependency],
        source_info: bool,
    ) -> Result<Self, Error> {
        let main = main.to_owned();
        let mut files: HashMap<String, Arc<str>> = dependencies
            .iter()
            .map(|d| (d.name.clone(), d.source.clone()))
            .collect();
        files.insert(main.clone(), source.into());
        let mut compiler = compiler(Arc::new(files), source_info);
        compiler.open_file(&main).map_err(Error::compile)?;
        let compiled = Compiled::of(&compiler, source_info);
        let mut schema = compiled
            .schema(&main)
            .expect("the compiled set holds the main file");
        schema.references = dependencies
            .iter()
            .filter_map(|d| Some((d.name.clone(), d.reference.clone()?)))
            .collect();
        Ok(schema)
    }

    /// The compiled file itself.
    pub fn file(&self) -> &FileDescriptorProto {
        &self.files[self.main_index]
    }

    /// Every compiled file, imports first, the schema itself last.
    pub fn files(&self) -> &[FileDescriptorProto] {
        &self.files
    }

    /// The file `name` this schema imports (directly or not), as a schema of
    /// its own, for comparing its types; `None` when it imports no such file.
    pub fn import(&self, name: &str) -> Option<Schema> {
        let main_index = self.files.iter().position(|f| f.name() == name)?;
        Some(Schema {
            main: name.to_owned(),
            main_index,
            files: self.files.clone(),
            references: HashMap::new(),
            encoded: self.files[main_index].encode_to_vec(),
            encoded_set: self.encoded_set.clone(),
        })
    }

    /// The registry reference a file was resolved from, by file name.
    pub fn reference(&self, file: &str) -> Option<&(String, i32)> {
        self.references.get(file)
    }

    /// Bytes that are equal for two schemas exactly when they define the same
    /// thing: the compiled file without its name, comments and layout. With
    /// `normalize`, the order of imports does not count either. Relative and
    /// fully-qualified type names always compile to the same bytes.
    pub fn identity(&self, normalize: bool) -> Vec<u8> {
        crate::identity::identity(&self.encoded, normalize)
    }

    /// The schema as Confluent's `format=serialized` gives it: the compiled
    /// file as a base64-encoded `FileDescriptorProto` (without source info).
    pub fn serialized(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(crate::identity::renamed(
            &self.encoded,
            &self.main,
            false,
        ))
    }

    /// About how many bytes this schema holds in memory: its encoded forms
    /// and its descriptors, imports included (shared ones counted whole).
    pub fn footprint(&self) -> usize {
        self.encoded.len() + self.encoded_set.len() * (1 + DESCRIPTOR_BYTES_PER_ENCODED_BYTE)
    }

    /// Every compiled file with its custom options, for reading them.
    pub fn descriptor_pool(
        &self,
    ) -> Result<prost_reflect::DescriptorPool, prost_reflect::DescriptorError> {
        prost_reflect::DescriptorPool::decode(self.encoded_set.as_slice())
    }

    /// The whole set, for `prost-reflect` or code generators.
    pub fn file_descriptor_set(&self) -> FileDescriptorSet {
        FileDescriptorSet {
            file: self.files.to_vec(),
        }
    }
}

/// A compiler of `files` and the well-known types, imports included.
pub(crate) fn compiler(
    files: Arc<HashMap<String, Arc<str>>>,
    source_info: bool,
) -> protox::Compiler {
    let mut resolver = ChainFileResolver::new();
    resolver.add(MemoryResolver(files));
    resolver.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler
        .include_imports(true)
        .include_source_info(source_info);
    compiler
}

/// One compilation, from which schemas of several of its files are taken
/// without compiling (or copying) the shared imports again.
pub(crate) struct Compiled {
    files: Arc<Vec<FileDescriptorProto>>,
    /// The encoded set of every compiled file, custom options included.
    encoded_set: Arc<Vec<u8>>,
    /// Where each file (in the order of `files`) lies in `encoded_set`.
    entries: Vec<Entry>,
    /// Each file's position in `files`, by name.
    by_name: HashMap<String, usize>,
    pool: prost_reflect::DescriptorPool,
}

/// One file's entry in an encoded set: from `start`, its tag and length,
/// then the encoded file itself (`file`). Kept as encoded, so that custom
/// options survive a subset.
struct Entry {
    start: usize,
    file: std::ops::Range<usize>,
}

impl Entry {
    fn whole(&self) -> std::ops::Range<usize> {
        self.start..self.file.end
    }
}

impl Compiled {
    /// What `compiler` compiled; without `source_info`, the encoded files
    /// lose theirs, as its `file_descriptor_set` does.
    pub(crate) fn of(compiler: &protox::Compiler, source_info: bool) -> Self {
        let pool = compiler.descriptor_pool();
        // protox's `encode_file_descriptor_set` drops source info through
        // reflection (a decode and an encode of every file as a dynamic
        // message): a third of a registry's replay. The bytes are the same.
        let mut encoded_set = Vec::new();
        let mut entries = Vec::with_capacity(pool.files().len());
        let mut files = Vec::with_capacity(pool.files().len());
        for file in pool.files() {
            // As protox's `file_descriptor_set`, in the same pass so that
            // `files` and `entries` share one order.
            let mut proto = file.file_descriptor_proto().clone();
            if !source_info {
                proto.source_code_info = None;
            }
            files.push(proto);
            let mut encoded = file.encode_to_vec();
            if !source_info {
                encoded = crate::identity::without_source_info(&encoded);
            }
            let start = encoded_set.len();
            prost::encoding::bytes::encode(1, &encoded, &mut encoded_set);
            let end = encoded_set.len();
            entries.push(Entry {
                start,
                file: end - encoded.len()..end,
            });
        }
        let by_name = (files.iter().enumerate())
            .map(|(i, f)| (f.name().to_owned(), i))
            .collect();
        Compiled {
            files: Arc::new(files),
            encoded_set: Arc::new(encoded_set),
            entries,
            by_name,
            pool,
        }
    }

    pub(crate) fn pool(&self) -> &prost_reflect::DescriptorPool {
        &self.pool
    }

    /// The schema of file `name`, if it was compiled: that file and what it
    /// imports, directly or not (not every file compiled with it, so that
    /// what is done per file of a contract does not grow with the contract).
    pub(crate) fn schema(&self, name: &str) -> Option<Schema> {
        let index = *self.by_name.get(name)?;
        let encoded = self.encoded_set[self.entries[index].file.clone()].to_vec();
        let wanted = self.imports_of(name);
        let (files, encoded_set) = if wanted.len() == self.files.len() {
            (self.files.clone(), self.encoded_set.clone())
        } else {
            let kept = |i: &usize| wanted.contains(self.files[*i].name());
            let indexes: Vec<usize> = (0..self.files.len()).filter(kept).collect();
            let mut encoded_set = Vec::new();
            for &i in &indexes {
                encoded_set.extend_from_slice(&self.encoded_set[self.entries[i].whole()]);
            }
            let files = indexes.iter().map(|&i| self.files[i].clone()).collect();
            (Arc::new(files), Arc::new(encoded_set))
        };
        let main_index = files.iter().position(|f| f.name() == name)?;
        Some(Schema {
            main: name.to_owned(),
            main_index,
            files,
            references: HashMap::new(),
            encoded,
            encoded_set,
        })
    }

    /// `name` and every file it imports, directly or not.
    fn imports_of(&self, name: &str) -> HashSet<&str> {
        let mut seen = HashSet::new();
        let mut pending = vec![name];
        while let Some(next) = pending.pop() {
            if let Some(&i) = self.by_name.get(next) {
                let file = &self.files[i];
                if seen.insert(file.name()) {
                    pending.extend(file.dependency.iter().map(String::as_str));
                }
            }
        }
        seen
    }
}

struct MemoryResolver(Arc<HashMap<String, Arc<str>>>);

impl FileResolver for MemoryResolver {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        let Some(source) = self.0.get(name) else {
            return Err(protox::Error::file_not_found(name));
        };
        match serialized_descriptor(source) {
            Some(bytes) => {
                let bytes = crate::identity::renamed(&bytes, name, true);
                let file =
                    FileDescriptorProto::decode(bytes.as_slice()).map_err(protox::Error::new)?;
                crate::bounds::check_descriptor(&file)
                    .map_err(|e| protox::Error::new(format!("{name}: {e}")))?;
                // Decoded again by protox, which keeps custom options.
                File::decode_file_descriptor_proto(bytes.as_slice()).map_err(protox::Error::new)
            }
            None => {
                crate::bounds::check_nesting(source)
                    .map_err(|e| protox::Error::new(format!("{name}:{e}")))?;
                File::from_source(name, source)
            }
        }
    }
}

/// Confluent's registry also takes a schema as a base64-encoded
/// `FileDescriptorProto` (what Confluent's Python and Go clients send). Such
/// text has none of the spaces and semicolons every `.proto` source has.
fn serialized_descriptor(source: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let trimmed = source.trim();
    if trimmed.is_empty() || trimmed.contains(|c: char| c.is_whitespace() || c == ';') {
        return None;
    }
    base64::engine::general_purpose::STANDARD
        .decode(trimmed)
        .ok()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::Contract;

    fn file(package: &str, imports: &[&str], body: &str) -> String {
        let imports: String = imports
            .iter()
            .map(|i| format!("import \"{i}\";\n"))
            .collect();
        format!("syntax = \"proto3\";\npackage {package};\n{imports}{body}")
    }

    /// The set is encoded without protox's reflection, to the same bytes,
    /// with and without source info (custom options kept either way).
    #[test]
    fn the_encoded_set_is_protoxs_with_or_without_source_info() {
        let files = Arc::new(HashMap::from([
            (
                "money.proto".to_owned(),
                Arc::<str>::from(
                    "syntax = \"proto3\";\npackage m;\n// Money.\nmessage Money { int64 units = 1; }\n",
                ),
            ),
            (
                "order.proto".to_owned(),
                Arc::<str>::from(
                    "syntax = \"proto3\";\npackage o;\nimport \"money.proto\";\nimport \"google/protobuf/descriptor.proto\";\n\
                     extend google.protobuf.MessageOptions { string topic = 50001; }\n\
                     // An order.\nmessage Order {\n  option (topic) = \"orders\";\n  m.Money total = 1;\n}\n",
                ),
            ),
        ]));
        for source_info in [true, false] {
            let mut compiler = compiler(files.clone(), source_info);
            compiler.open_file("order.proto").unwrap();
            let compiled = Compiled::of(&compiler, source_info);
            assert_eq!(
                *compiled.encoded_set,
                compiler.encode_file_descriptor_set(),
                "source info: {source_info}"
            );
            let order = compiled.schema("order.proto").unwrap();
            let set = FileDescriptorSet::decode(order.encoded_set.as_slice()).unwrap();
            let main = FileDescriptorProto::decode(order.encoded.as_slice()).unwrap();
            assert_eq!(main.source_code_info.is_some(), source_info);
            assert_eq!(&main, set.file.last().unwrap());
            let needle = b"orders";
            assert!(order.encoded.windows(needle.len()).any(|w| w == needle));
        }
    }

    /// What is done per file of a contract must not grow with the contract:
    /// a file's schema holds that file and what it imports, nothing else,
    /// with its custom options kept.
    #[test]
    fn a_files_schema_holds_the_file_and_its_imports_only() {
        let event = |name: &str, topic: &str| {
            format!(
                "message {name} {{\n  option (protobus.event) = {{ topic: \"{topic}\" key: \"id\" }};\n  \
                 string id = 1;\n  common.Money total = 2;\n}}\n"
            )
        };
        let sources = BTreeMap::from([
            (
                "common.proto".to_owned(),
                file("common", &[], "message Money { int64 units = 1; }\n"),
            ),
            (
                "a.proto".to_owned(),
                file(
                    "a",
                    &["protobus/options.proto", "common.proto"],
                    &event("A", "topic.a"),
                ),
            ),
            (
                "b.proto".to_owned(),
                file(
                    "b",
                    &["protobus/options.proto", "common.proto"],
                    &event("B", "topic.b"),
                ),
            ),
        ]);
        let contract = Contract::from_sources(sources);
        let schema = contract.file("a.proto").expect("a.proto compiles");
        let mut names: Vec<&str> = schema.files().iter().map(|f| f.name()).collect();
        names.sort_unstable();
        assert!(
            names.contains(&"a.proto") && names.contains(&"common.proto"),
            "{names:?}"
        );
        assert!(
            !names.contains(&"b.proto"),
            "another file of the contract: {names:?}"
        );
        assert_eq!(schema.file().name(), "a.proto");

        let pool = schema.descriptor_pool().expect("the kept set decodes");
        assert!(pool.get_file_by_name("b.proto").is_none());
        let options = pool.get_message_by_name("a.A").expect("a.A").options();
        let encoded = prost::Message::encode_to_vec(&options);
        let needle = b"topic.a";
        assert!(
            encoded.windows(needle.len()).any(|w| w == needle),
            "the event option survives the subset"
        );
    }
}
