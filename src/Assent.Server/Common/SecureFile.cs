namespace Assent.Server.Common;

/// <summary>Files that hold secrets: created 0600 (directories 0700), written atomically.</summary>
internal static class SecureFile
{
    private const UnixFileMode OwnerOnlyFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode OwnerOnlyDirectory = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    public static void EnsurePrivateDirectory(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(path);
            return;
        }
        Directory.CreateDirectory(path, OwnerOnlyDirectory);
        if ((File.GetUnixFileMode(path) & ~OwnerOnlyDirectory) != 0)
        {
            File.SetUnixFileMode(path, OwnerOnlyDirectory);
        }
    }

    /// <summary>Creates the file only if absent; false when it already exists.</summary>
    public static bool TryCreateNew(string path, ReadOnlySpan<byte> content)
    {
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = OwnerOnlyFile;
        }
        try
        {
            using var stream = new FileStream(path, options);
            stream.Write(content);
            stream.Flush(flushToDisk: true);
            return true;
        }
        catch (IOException) when (File.Exists(path))
        {
            return false;
        }
    }

    /// <summary>Writes to a 0600 temporary file beside the target, fsyncs, then renames over it.</summary>
    public static void WriteAtomic(string path, ReadOnlySpan<byte> content)
    {
        var temp = path + "." + Environment.ProcessId + "." + Guid.NewGuid().ToString("N")[..8] + ".tmp";
        if (!TryCreateNew(temp, content))
        {
            throw new IOException($"could not create {temp}");
        }
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>Makes an existing file that group or others can read or write the owner's only (0600); true when it had to.</summary>
    public static bool TryTighten(string path)
    {
        if (OperatingSystem.IsWindows() || !File.Exists(path) || !IsExposed(path))
        {
            return false;
        }
        File.SetUnixFileMode(path, OwnerOnlyFile);
        return true;
    }

    /// <summary>True when group or others can read or write the file.</summary>
    public static bool IsExposed(string path) =>
        !OperatingSystem.IsWindows() &&
        (File.GetUnixFileMode(path) & (UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite)) != 0;
}
