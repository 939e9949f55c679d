use std::collections::HashMap;
use std::sync::Arc;

use prost_types::{FileDescriptorProto, FileDescriptorSet};
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};

use crate::Error;

/// A file that the schema imports, by the name it is imported as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    /// The import path, e.g. `shop/v1/money.proto` (a registry reference's `name`).
    pub name: String,
    /// Its `.proto` source.
    pub source: String,
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

/// The name the compiled schema itself gets (unless a dependency already has it).
const MAIN_NAME: &str = "schema.proto";

impl Schema {
    /// Compiles `source` with `dependencies` as its importable files. The
    /// well-known types (`google/protobuf/*.proto`) are always importable.
    pub fn compile(source: &str, dependencies: &[Dependency]) -> Result<Self, Error> {
        let mut main = MAIN_NAME.to_owned();
        while dependencies.iter().any(|d| d.name == main) {
            main.insert(0, '_');
        }
        Self::compile_named(&main, source, dependencies)
    }

    /// [`compile`](Self::compile) under the file name `main`, so that
    /// diagnostics point at the file as its authors know it.
    pub fn compile_named(
        main: &str,
        source: &str,
        dependencies: &[Dependency],
    ) -> Result<Self, Error> {
        let main = main.to_owned();
        let mut files: HashMap<String, String> = dependencies
            .iter()
            .map(|d| (d.name.clone(), d.source.clone()))
            .collect();
        files.insert(main.clone(), source.to_owned());
        let mut resolver = ChainFileResolver::new();
        resolver.add(MemoryResolver(files.clone()));
        resolver.add(GoogleFileResolver::new());

        let mut compiler = protox::Compiler::with_file_resolver(resolver);
        compiler.include_imports(true).include_source_info(true);
        compiler
            .open_file(&main)
            .map_err(|e| Error::compile(e, &files))?;
        let compiled = Compiled::of(&compiler);
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

/// One compilation, from which schemas of several of its files are taken
/// without compiling (or copying) the shared imports again.
pub(crate) struct Compiled {
    files: Arc<Vec<FileDescriptorProto>>,
    encoded_set: Arc<Vec<u8>>,
    pool: prost_reflect::DescriptorPool,
}

impl Compiled {
    pub(crate) fn of(compiler: &protox::Compiler) -> Self {
        Compiled {
            files: Arc::new(compiler.file_descriptor_set().file),
            encoded_set: Arc::new(compiler.encode_file_descriptor_set()),
            pool: compiler.descriptor_pool(),
        }
    }

    pub(crate) fn pool(&self) -> &prost_reflect::DescriptorPool {
        &self.pool
    }

    /// The schema of file `name`, if it was compiled.
    pub(crate) fn schema(&self, name: &str) -> Option<Schema> {
        let main_index = self.files.iter().position(|f| f.name() == name)?;
        let encoded = self.pool.get_file_by_name(name)?.encode_to_vec();
        Some(Schema {
            main: name.to_owned(),
            main_index,
            files: self.files.clone(),
            references: HashMap::new(),
            encoded,
            encoded_set: self.encoded_set.clone(),
        })
    }
}

pub(crate) struct MemoryResolver(pub(crate) HashMap<String, String>);

impl FileResolver for MemoryResolver {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match self.0.get(name) {
            Some(source) => match serialized_descriptor(source) {
                Some(bytes) => File::decode_file_descriptor_proto(
                    crate::identity::renamed(&bytes, name, true).as_slice(),
                )
                .map_err(protox::Error::new),
                None => File::from_source(name, source),
            },
            None => Err(protox::Error::file_not_found(name)),
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
